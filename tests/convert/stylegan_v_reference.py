"""The authors' StyleGAN-V networks and checkpoint format, re-implemented for the converter's tests.

An independent implementation (it does not import vganzoo) that follows universome/stylegan-v
(src/training/networks.py, layers.py, motion.py, training_loop.py) and stylegan2-ada-pytorch
(torch_utils/persistence.py and the plain-PyTorch reference paths of torch_utils/ops): the same
classes, attribute names, constructor arguments and forward maths (their float16 paths are not
needed: compare with ``force_fp32=True``). Its persistent classes pickle exactly as theirs do, as a
call of ``src.torch_utils.persistence._reconstruct_persistent_obj(meta)`` holding the source of
this module and the object's ``__dict__``; :func:`write_snapshot` writes a training snapshot as
their loop does (``pickle.dump`` of G, D, G_ema, augment_pipe, the Adam optimisers with their
states on "cuda:0", vis, stats and training_set_kwargs). The modules such a pickle names are put in
``sys.modules`` only while it is written (:func:`pickling_modules`).
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import pickle
import sys
import types
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

PERSISTENCE_MODULE = "src.torch_utils.persistence"
PERSISTENCE_VERSION = 6


# ------------------------------------------------------------------------------------------------
# torch_utils/persistence.py
# ------------------------------------------------------------------------------------------------
_PERSISTENT_CLASSES: dict = {}  # class name -> its persistent (decorated) class


def _reconstruct_persistent_obj(meta):
    """What the pickles name. The authors' version execs meta["module_src"] to get the class; this
    one (used only by copy.deepcopy in this process) takes the class already defined here."""
    cls = _PERSISTENT_CLASSES[meta["class_name"]]
    obj = cls.__new__(cls)
    obj.__setstate__(meta["state"])
    return obj


def persistent_class(orig_class):
    module_src = inspect.getsource(sys.modules[orig_class.__module__])

    class Decorator(orig_class):
        _orig_module_src = module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(
                    type="class",
                    version=PERSISTENCE_VERSION,
                    module_src=self._orig_module_src,
                    class_name=self._orig_class_name,
                    state=fields[2],
                )
                fields[0] = _reconstruct_persistent_obj
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    _PERSISTENT_CLASSES[orig_class.__name__] = Decorator
    return Decorator


# ------------------------------------------------------------------------------------------------
# configs: stand-ins for dnnlib.EasyDict and OmegaConf's DictConfig (attribute access, pickled
# with OmegaConf's __dict__ layout: _metadata, _parent, _content of value nodes)
# ------------------------------------------------------------------------------------------------
class EasyDict(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        self[name] = value


class Metadata:
    def __init__(self, key=None):
        self.ref_type, self.object_type, self.optional, self.key, self.flags = Any, None, True, key, {}


class ContainerMetadata(Metadata):
    pass


class AnyNode:
    def __init__(self, value, key, parent):
        self._metadata, self._parent, self._val = Metadata(key), parent, value


class DictConfig:
    def __init__(self, content: dict, key=None, parent=None):
        self.__dict__.update(_metadata=ContainerMetadata(key), _parent=parent, _content={})
        for k, v in content.items():
            self._content[k] = DictConfig(v, k, self) if isinstance(v, dict) else AnyNode(v, k, self)

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        node = self.__dict__["_content"][name]
        return node if isinstance(node, DictConfig) else node._val

    def __getitem__(self, name):
        return self.__getattr__(name)

    def __contains__(self, name):
        return name in self._content

    def get(self, name, default=None):
        try:
            return self[name]
        except KeyError:
            return default

    def keys(self):
        return self._content.keys()

    def to_container(self):
        return {
            k: (v.to_container() if isinstance(v, DictConfig) else v._val) for k, v in self._content.items()
        }


# ------------------------------------------------------------------------------------------------
# torch_utils/ops: the plain-PyTorch reference implementations
# ------------------------------------------------------------------------------------------------
ACTIVATIONS = {
    "linear": (lambda x, alpha: x, 0.0, 1.0),
    "lrelu": (lambda x, alpha: F.leaky_relu(x, alpha), 0.2, float(np.sqrt(2))),
}


def bias_act(x, b=None, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    func, def_alpha, def_gain = ACTIVATIONS[act]
    alpha = float(alpha if alpha is not None else def_alpha)
    gain = float(gain if gain is not None else def_gain)
    clamp = float(clamp if clamp is not None else -1)
    if b is not None:
        x = x + b.reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = func(x, alpha)
    if gain != 1:
        x = x * gain
    if clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x


def setup_filter(f):
    f = torch.as_tensor(f, dtype=torch.float32)
    f = torch.outer(f, f)
    f /= f.sum()
    return f


def upfirdn2d(x, f, up=1, down=1, padding=0, flip_filter=False, gain=1):
    if f is None:
        f = torch.ones([1, 1], dtype=torch.float32, device=x.device)
    batch_size, num_channels, in_height, in_width = x.shape
    padx0, padx1, pady0, pady1 = (padding, padding, padding, padding) if isinstance(padding, int) else padding
    x = x.reshape([batch_size, num_channels, in_height, 1, in_width, 1])
    x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
    x = x.reshape([batch_size, num_channels, in_height * up, in_width * up])
    x = F.pad(x, [max(padx0, 0), max(padx1, 0), max(pady0, 0), max(pady1, 0)])
    x = x[:, :, max(-pady0, 0) : x.shape[2] - max(-pady1, 0), max(-padx0, 0) : x.shape[3] - max(-padx1, 0)]
    f = f * (gain ** (f.ndim / 2))
    f = f.to(x.dtype)
    if not flip_filter:
        f = f.flip(list(range(f.ndim)))
    f = f[np.newaxis, np.newaxis].repeat([num_channels, 1] + [1] * f.ndim)
    x = F.conv2d(input=x, weight=f, groups=num_channels)
    return x[:, :, ::down, ::down]


def upsample2d(x, f, up=2):
    fw = f.shape[-1]
    p = [(fw + up - 1) // 2, (fw - up) // 2, (fw + up - 1) // 2, (fw - up) // 2]
    return upfirdn2d(x, f, up=up, padding=p, gain=up * up)


def _conv2d_wrapper(x, w, stride=1, padding=0, groups=1, transpose=False, flip_weight=True):
    kh, kw = w.shape[2:]
    if not flip_weight and (kw > 1 or kh > 1):
        w = w.flip([2, 3])
    if transpose:
        return F.conv_transpose2d(x, w, stride=stride, padding=padding, groups=groups)
    return F.conv2d(x, w, stride=stride, padding=padding, groups=groups)


def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    out_channels, in_channels_per_group, kh, kw = w.shape
    fw = fh = 1 if f is None else f.shape[-1]
    px0 = px1 = py0 = py1 = padding
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2
    if kw == 1 and kh == 1 and (down > 1 and up == 1):
        x = upfirdn2d(x, f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight)
    if kw == 1 and kh == 1 and (up > 1 and down == 1):
        x = _conv2d_wrapper(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d(x, f, up=up, padding=[px0, px1, py0, py1], gain=up**2, flip_filter=flip_filter)
    if down > 1 and up == 1:
        x = upfirdn2d(x, f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d_wrapper(x, w, stride=down, groups=groups, flip_weight=flip_weight)
    if up > 1:
        if groups == 1:
            w = w.transpose(0, 1)
        else:
            w = w.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw)
            w = w.transpose(1, 2)
            w = w.reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)
        px0 -= kw - 1
        px1 -= kw - up
        py0 -= kh - 1
        py1 -= kh - up
        pxt = max(min(-px0, -px1), 0)
        pyt = max(min(-py0, -py1), 0)
        x = _conv2d_wrapper(
            x, w, stride=up, padding=[pyt, pxt], groups=groups, transpose=True, flip_weight=(not flip_weight)
        )
        x = upfirdn2d(
            x, f, padding=[px0 + pxt, px1 + pxt, py0 + pyt, py1 + pyt], gain=up**2, flip_filter=flip_filter
        )
        if down > 1:
            x = upfirdn2d(x, f, down=down, flip_filter=flip_filter)
        return x
    if up == 1 and down == 1 and px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
        return _conv2d_wrapper(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)
    raise NotImplementedError("the generic path is not used by StyleGAN-V")


def normalize_2nd_moment(x, dim=1, eps=1e-8):
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()


def modulated_conv2d(
    x,
    weight,
    styles,
    noise=None,
    up=1,
    down=1,
    padding=0,
    resample_filter=None,
    demodulate=True,
    flip_weight=True,
    fused_modconv=True,
):
    batch_size = x.shape[0]
    _, in_channels, kh, kw = weight.shape
    w = dcoefs = None
    if demodulate or fused_modconv:
        w = weight.unsqueeze(0) * styles.reshape(batch_size, 1, -1, 1, 1)
    if demodulate:
        dcoefs = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
    if demodulate and fused_modconv:
        w = w * dcoefs.reshape(batch_size, -1, 1, 1, 1)
    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch_size, -1, 1, 1)
        x = conv2d_resample(
            x,
            weight.to(x.dtype),
            f=resample_filter,
            up=up,
            down=down,
            padding=padding,
            flip_weight=flip_weight,
        )
        if demodulate and noise is not None:
            x = torch.addcmul(noise.to(x.dtype), x, dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1))
        elif demodulate:
            x = x * dcoefs.to(x.dtype).reshape(batch_size, -1, 1, 1)
        elif noise is not None:
            x = x.add_(noise.to(x.dtype))
        return x
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(
        x,
        w.to(x.dtype),
        f=resample_filter,
        up=up,
        down=down,
        padding=padding,
        groups=batch_size,
        flip_weight=flip_weight,
    )
    x = x.reshape(batch_size, -1, *x.shape[2:])
    if noise is not None:
        x = x.add_(noise)
    return x


# ------------------------------------------------------------------------------------------------
# training/layers.py
# ------------------------------------------------------------------------------------------------
@persistent_class
class FullyConnectedLayer(torch.nn.Module):
    def __init__(
        self, in_features, out_features, bias=True, activation="linear", lr_multiplier=1, bias_init=0
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(torch.randn([out_features, in_features]) / lr_multiplier)
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        if self.activation == "linear" and b is not None:
            return torch.addmm(b.unsqueeze(0), x, w.t())
        return bias_act(x.matmul(w.t()), b, act=self.activation)


@persistent_class
class Conv2dLayer(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        bias=True,
        activation="linear",
        up=1,
        down=1,
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        channels_last=False,
        trainable=True,
        instance_norm=False,
        lr_multiplier=1.0,
    ):
        super().__init__()
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))
        self.act_gain = ACTIVATIONS[activation][2]
        self.instance_norm, self.lr_multiplier = instance_norm, lr_multiplier
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels])) if bias else None

    def forward(self, x, gain=1):
        w = self.weight * (self.weight_gain * self.lr_multiplier)
        b = (self.bias.to(x.dtype) * self.lr_multiplier) if self.bias is not None else None
        x = conv2d_resample(
            x,
            w.to(x.dtype),
            f=self.resample_filter,
            up=self.up,
            down=self.down,
            padding=self.padding,
            flip_weight=(self.up == 1),
        )
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, b, act=self.activation, gain=self.act_gain * gain, clamp=act_clamp)


@persistent_class
class MappingNetwork(torch.nn.Module):
    def __init__(
        self,
        z_dim,
        c_dim,
        w_dim,
        num_ws,
        num_layers=8,
        embed_features=None,
        layer_features=None,
        activation="lrelu",
        lr_multiplier=0.01,
        w_avg_beta=0.995,
        cfg=None,
    ):
        super().__init__()
        self.cfg, self.z_dim, self.c_dim, self.w_dim, self.num_ws = cfg, z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        embed_features = w_dim if embed_features is None else embed_features
        embed_features = 0 if c_dim == 0 else embed_features
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for idx in range(num_layers):
            layer = FullyConnectedLayer(
                features[idx], features[idx + 1], activation=activation, lr_multiplier=lr_multiplier
            )
            setattr(self, f"fc{idx}", layer)
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros([w_dim]))

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, skip_w_avg_update=False):
        x = None
        if self.z_dim > 0:
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for idx in range(self.num_layers):
            x = getattr(self, f"fc{idx}")(x)
        if self.w_avg_beta is not None and self.training and not skip_w_avg_update:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat([1, self.num_ws, 1])
        if truncation_psi != 1:
            x = self.w_avg.lerp(x, truncation_psi)
        return x


@persistent_class
class GenInput(torch.nn.Module):
    def __init__(self, cfg, channel_dim, motion_v_dim=None):
        super().__init__()
        self.cfg = cfg
        self.input = TemporalInput(self.cfg, channel_dim, motion_v_dim=motion_v_dim)
        self.total_dim = self.input.get_dim()

    def forward(self, batch_size, motion_v=None, dtype=None, memory_format=None):
        return self.input(motion_v=motion_v)


@persistent_class
class TemporalInput(torch.nn.Module):
    def __init__(self, cfg, channel_dim, motion_v_dim):
        super().__init__()
        self.cfg, self.motion_v_dim = cfg, motion_v_dim
        self.const = torch.nn.Parameter(torch.randn(1, channel_dim, 4, 4))

    def get_dim(self):
        return self.motion_v_dim + self.const.shape[1]

    def forward(self, motion_v):
        return torch.cat(
            [
                self.const.repeat(len(motion_v), 1, 1, 1),
                motion_v.unsqueeze(2).unsqueeze(3).repeat(1, 1, *self.const.shape[2:]),
            ],
            dim=1,
        )


class TemporalDifferenceEncoder(torch.nn.Module):  # not persistent in the authors' code either
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.d = 256
        self.const_embed = torch.nn.Embedding(self.cfg.sampling.max_num_frames, self.d)
        self.time_encoder = FixedTimeEncoder(
            self.cfg.sampling.max_num_frames, skip_small_t_freqs=self.cfg.get("skip_small_t_freqs", 0)
        )

    def get_dim(self):
        return (self.d + self.time_encoder.get_dim()) * (self.cfg.sampling.num_frames_per_video - 1)

    def forward(self, t):
        batch_size = t.shape[0]
        num_diffs = self.cfg.sampling.num_frames_per_video - 1
        t_diffs = (t[:, 1:] - t[:, :-1]).view(-1)
        const_embs = self.const_embed(t_diffs.float().round().long())
        fourier_embs = self.time_encoder(t_diffs.unsqueeze(1))
        out = torch.cat([const_embs, fourier_embs], dim=1)
        return out.view(batch_size, num_diffs, -1).view(batch_size, -1)


@persistent_class
class FixedTimeEncoder(torch.nn.Module):
    def __init__(self, max_num_frames, skip_small_t_freqs=0):
        super().__init__()
        time_resolution = 2 ** np.ceil(np.log2(max_num_frames))
        num_feats = np.ceil(np.log2(time_resolution)).astype(int)
        powers = torch.tensor([2]).repeat(num_feats).pow(torch.arange(num_feats))
        powers = powers[: len(powers) - skip_small_t_freqs]
        self.register_buffer("fourier_coefs", powers.unsqueeze(0).float() * np.pi / time_resolution)

    def get_dim(self):
        return self.fourier_coefs.shape[1] * 2

    def forward(self, t):
        t = t.view(-1).float()
        raw = self.fourier_coefs * t.unsqueeze(1)
        return torch.cat([raw.sin(), raw.cos()], dim=1)


@persistent_class
class EqLRConv1d(torch.nn.Module):
    def __init__(
        self,
        in_features,
        out_features,
        kernel_size,
        padding=0,
        stride=1,
        activation="linear",
        lr_multiplier=1.0,
        bias=True,
        bias_init=0.0,
    ):
        super().__init__()
        self.activation = activation
        self.weight = torch.nn.Parameter(
            torch.randn([out_features, in_features, kernel_size]) / lr_multiplier
        )
        self.bias = torch.nn.Parameter(torch.full([out_features], float(bias_init))) if bias else None
        self.weight_gain = lr_multiplier / np.sqrt(in_features * kernel_size)
        self.bias_gain = lr_multiplier
        self.padding, self.stride = padding, stride

    def forward(self, x):
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias
        if b is not None:
            b = b.to(x.dtype)
            if self.bias_gain != 1:
                b = b * self.bias_gain
        y = F.conv1d(input=x, weight=w, bias=b, stride=self.stride, padding=self.padding)
        return F.leaky_relu(y, negative_slope=0.2) if self.activation == "lrelu" else y


# ------------------------------------------------------------------------------------------------
# training/motion.py
# ------------------------------------------------------------------------------------------------
def construct_linspaced_frequencies(num_freqs, min_period_len, max_period_len):
    freqs = 2 * np.pi / (2 ** np.linspace(np.log2(min_period_len), np.log2(max_period_len), num_freqs))
    return torch.from_numpy(freqs[::-1].copy().astype(np.float32)).unsqueeze(0)


@persistent_class
class MotionMappingNetwork(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        self.time_encoder = AlignedTimeEncoder(cfg=self.cfg, latent_dim=self.cfg.motion.v_dim)
        k = self.cfg.motion.kernel_size
        self.conv = torch.nn.Sequential(
            EqLRConv1d(
                self.cfg.motion.z_dim + self.cfg.c_dim,
                self.cfg.motion.z_dim,
                k,
                padding=0,
                activation="lrelu",
                lr_multiplier=0.01,
            ),
            EqLRConv1d(
                self.cfg.motion.z_dim,
                self.cfg.motion.v_dim,
                k,
                padding=0,
                activation="lrelu",
                lr_multiplier=0.01,
            ),
        )
        self.num_additional_codes = (k - 1) * 2

    def get_max_traj_len(self, t):
        max_t = max(self.cfg.sampling.max_num_frames - 1, t.max().item())
        return np.ceil(max_t / self.cfg.motion.motion_z_distance).astype(int).item() + 2

    def generate_motion_u_codes(self, c, t, motion_z=None):
        batch_size, num_frames = t.shape
        max_traj_len = self.get_max_traj_len(t) + self.num_additional_codes
        if motion_z is None:
            motion_z = torch.randn(batch_size, max_traj_len, self.cfg.motion.z_dim, device=c.device)
        input_trajs = motion_z[:batch_size, :max_traj_len, : self.cfg.motion.z_dim].to(c.device)
        if self.cfg.c_dim > 0:
            input_trajs = torch.cat([input_trajs, c.unsqueeze(1).repeat(1, max_traj_len, 1)], dim=2)
        trajs = self.conv(input_trajs.permute(0, 2, 1)).permute(0, 2, 1)
        distance = self.cfg.motion.motion_z_distance
        left_idx = (t / distance).floor().long()
        batch_idx = torch.arange(batch_size, device=c.device).unsqueeze(1).repeat(1, num_frames)
        out = {"motion_u_left": trajs[batch_idx, left_idx], "motion_u_right": trajs[batch_idx, left_idx + 1]}
        out["t_left"] = t - t % distance
        out["t_right"] = out["t_left"] + distance
        out["interp_weights"] = ((t % distance) / distance).unsqueeze(2).to(torch.float32)
        out["motion_z"] = motion_z
        return out

    def get_dim(self):
        return self.time_encoder.get_dim()

    def forward(self, c, t, motion_z=None):
        info = self.generate_motion_u_codes(c, t, motion_z=motion_z)
        motion_v = self.time_encoder(
            t=t,
            motion_u_left=info["motion_u_left"],
            motion_u_right=info["motion_u_right"],
            t_left=info["t_left"],
            t_right=info["t_right"],
            interp_weights=info["interp_weights"],
        )
        return {"motion_v": motion_v, "motion_z": info["motion_z"]}


@persistent_class
class AlignedTimeEncoder(torch.nn.Module):
    def __init__(self, latent_dim=512, cfg=None):
        super().__init__()
        self.cfg, self.latent_dim = cfg, latent_dim
        freqs = construct_linspaced_frequencies(
            self.cfg.time_enc.dim, self.cfg.time_enc.min_period_len, self.cfg.time_enc.max_period_len
        )
        self.register_buffer("freqs", freqs)
        self.periods_predictor = FullyConnectedLayer(
            latent_dim, freqs.shape[1], activation="linear", bias=False
        )
        self.phase_predictor = FullyConnectedLayer(
            latent_dim, freqs.shape[1], activation="linear", bias=False
        )
        period_lens = 2 * np.pi / self.freqs
        self.register_buffer("phase_scales", self.cfg.time_enc.max_period_len / period_lens)
        self.aligners_predictor = FullyConnectedLayer(
            latent_dim, self.freqs.shape[1] * 2, activation="linear", bias=False
        )

    def get_dim(self):
        return self.freqs.shape[1] * 2

    def forward(self, t, motion_u_left, motion_u_right, interp_weights, t_left, t_right):
        batch_size, num_frames, dim = motion_u_left.shape
        motion_u_left = motion_u_left.view(batch_size * num_frames, dim)
        motion_u_right = motion_u_right.view(batch_size * num_frames, dim)
        periods = self.periods_predictor(motion_u_left).tanh() + 1
        phases = self.phase_predictor(motion_u_left)
        aligners_left = self.aligners_predictor(motion_u_left)
        aligners_right = self.aligners_predictor(motion_u_right)

        def embed(at):
            raw = self.freqs * periods * at.view(-1).float().unsqueeze(1) + phases * self.phase_scales
            return torch.cat([raw.sin(), raw.cos()], dim=1)

        interp_weights = interp_weights.view(-1, 1)
        remove = embed(t_left) * (1 - interp_weights) + embed(t_right) * interp_weights
        add = aligners_left * (1 - interp_weights) + aligners_right * interp_weights
        return embed(t) - remove + add


# ------------------------------------------------------------------------------------------------
# training/networks.py
# ------------------------------------------------------------------------------------------------
@persistent_class
class SynthesisLayer(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        resolution,
        kernel_size=3,
        up=1,
        activation="lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        channels_last=False,
        cfg=None,
    ):
        super().__init__()
        self.cfg, self.resolution, self.up, self.activation, self.conv_clamp = (
            cfg,
            resolution,
            up,
            activation,
            conv_clamp,
        )
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.padding = kernel_size // 2
        self.act_gain = ACTIVATIONS[activation][2]
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        if self.cfg.use_noise:
            self.register_buffer("noise_const", torch.randn([resolution, resolution]))
            self.noise_strength = torch.nn.Parameter(torch.zeros([]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))

    def forward(self, x, w, noise_mode="random", fused_modconv=True, gain=1):
        styles = self.affine(w)
        noise = None
        if self.cfg.use_noise and noise_mode == "random":
            noise = (
                torch.randn([x.shape[0], 1, self.resolution, self.resolution], device=x.device)
                * self.noise_strength
            )
        if self.cfg.use_noise and noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        x = modulated_conv2d(
            x=x,
            weight=self.weight,
            styles=styles,
            noise=noise,
            up=self.up,
            padding=self.padding,
            resample_filter=self.resample_filter,
            flip_weight=(self.up == 1),
            fused_modconv=fused_modconv,
        )
        act_clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(
            x, self.bias.to(x.dtype), act=self.activation, gain=self.act_gain * gain, clamp=act_clamp
        )


@persistent_class
class ToRGBLayer(torch.nn.Module):
    def __init__(self, in_channels, out_channels, w_dim, kernel_size=1, conv_clamp=None, channels_last=False):
        super().__init__()
        self.conv_clamp = conv_clamp
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = torch.nn.Parameter(torch.randn([out_channels, in_channels, kernel_size, kernel_size]))
        self.bias = torch.nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / np.sqrt(in_channels * (kernel_size**2))

    def forward(self, x, w, fused_modconv=True):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(
            x=x, weight=self.weight, styles=styles, demodulate=False, fused_modconv=fused_modconv
        )
        return bias_act(x, self.bias.to(x.dtype), clamp=self.conv_clamp)


@persistent_class
class SynthesisBlock(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        w_dim,
        motion_v_dim,
        resolution,
        img_channels,
        is_last,
        architecture="skip",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        use_fp16=False,
        fp16_channels_last=False,
        cfg=None,
        **layer_kwargs,
    ):
        super().__init__()
        self.cfg, self.in_channels, self.w_dim, self.resolution = cfg, in_channels, w_dim, resolution
        self.img_channels, self.is_last, self.architecture, self.use_fp16 = (
            img_channels,
            is_last,
            architecture,
            use_fp16,
        )
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_conv = self.num_torgb = 0
        if in_channels == 0:
            self.input = GenInput(self.cfg, out_channels, motion_v_dim=motion_v_dim)
            conv1_in_channels = self.input.total_dim
        else:
            self.conv0 = SynthesisLayer(
                in_channels,
                out_channels,
                w_dim=w_dim,
                resolution=resolution,
                up=2,
                resample_filter=resample_filter,
                conv_clamp=conv_clamp,
                kernel_size=3,
                cfg=cfg,
                **layer_kwargs,
            )
            self.num_conv += 1
            conv1_in_channels = out_channels
        self.conv1 = SynthesisLayer(
            conv1_in_channels,
            out_channels,
            w_dim=w_dim,
            resolution=resolution,
            conv_clamp=conv_clamp,
            kernel_size=3,
            cfg=cfg,
            **layer_kwargs,
        )
        self.num_conv += 1
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim=w_dim, conv_clamp=conv_clamp)
        self.num_torgb += 1

    def forward(self, x, img, ws, motion_v=None, force_fp32=False, fused_modconv=None, **layer_kwargs):
        w_iter = iter(ws.unbind(dim=1))
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        if fused_modconv is None:
            fused_modconv = (not self.training) and (dtype == torch.float32 or int(x.shape[0]) == 1)
        if self.in_channels == 0:
            x = self.input(ws.shape[0], motion_v=motion_v, dtype=dtype)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        else:
            x = x.to(dtype=dtype)
            x = self.conv0(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
            x = self.conv1(x, next(w_iter), fused_modconv=fused_modconv, **layer_kwargs)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        y = self.torgb(x, next(w_iter), fused_modconv=fused_modconv)
        y = y.to(dtype=torch.float32)
        img = img.add_(y) if img is not None else y
        return x, img


@persistent_class
class SynthesisNetwork(torch.nn.Module):
    def __init__(
        self,
        w_dim,
        img_resolution,
        img_channels,
        channel_base=32768,
        channel_max=512,
        num_fp16_res=0,
        cfg=None,
        **block_kwargs,
    ):
        super().__init__()
        self.w_dim, self.cfg, self.img_resolution = w_dim, cfg, img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(2, self.img_resolution_log2 + 1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in self.block_resolutions}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        self.motion_encoder = MotionMappingNetwork(self.cfg)
        self.motion_v_dim = self.motion_encoder.get_dim()
        self.num_ws = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(
                channels_dict[res // 2] if res > 4 else 0,
                channels_dict[res],
                w_dim=self.w_dim,
                motion_v_dim=self.motion_v_dim,
                resolution=res,
                img_channels=img_channels,
                is_last=(res == self.img_resolution),
                use_fp16=(res >= fp16_resolution),
                cfg=cfg,
                **block_kwargs,
            )
            self.num_ws += block.num_conv
            if res == self.img_resolution:
                self.num_ws += block.num_torgb
            setattr(self, f"b{res}", block)

    def forward(self, ws, t=None, c=None, motion_z=None, motion_v=None, **block_kwargs):
        if motion_v is None:
            motion_v = self.motion_encoder(c, t, motion_z=motion_z)["motion_v"]
        ws = ws.repeat_interleave(t.shape[1], dim=0)
        ws = ws.to(torch.float32)
        block_ws, w_idx = [], 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            block_ws.append(ws.narrow(1, w_idx, block.num_conv + block.num_torgb))
            w_idx += block.num_conv
        x = img = None
        for res, cur_ws in zip(self.block_resolutions, block_ws):
            x, img = getattr(self, f"b{res}")(x, img, cur_ws, motion_v=motion_v, **block_kwargs)
        return img


@persistent_class
class Generator(torch.nn.Module):
    def __init__(
        self, c_dim, w_dim, img_resolution, img_channels, mapping_kwargs=None, synthesis_kwargs=None, cfg=None
    ):
        super().__init__()
        self.cfg = cfg
        self.sampling_dict = self.cfg.sampling.to_container()
        self.z_dim, self.c_dim, self.w_dim = self.cfg.z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        self.synthesis = SynthesisNetwork(
            w_dim=w_dim,
            img_resolution=img_resolution,
            img_channels=img_channels,
            cfg=cfg,
            **(synthesis_kwargs or {}),
        )
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(
            z_dim=self.z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **(mapping_kwargs or {})
        )

    def forward(self, z, c, t, truncation_psi=1, truncation_cutoff=None, **synthesis_kwargs):
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, t=t, c=c, **synthesis_kwargs)


@persistent_class
class DiscriminatorBlock(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        tmp_channels,
        out_channels,
        resolution,
        img_channels,
        first_layer_idx,
        architecture="resnet",
        activation="lrelu",
        resample_filter=(1, 3, 3, 1),
        conv_clamp=None,
        use_fp16=False,
        fp16_channels_last=False,
        freeze_layers=0,
        cfg=None,
    ):
        super().__init__()
        self.cfg, self.in_channels, self.resolution, self.img_channels = (
            cfg,
            in_channels,
            resolution,
            img_channels,
        )
        self.first_layer_idx, self.architecture, self.use_fp16 = first_layer_idx, architecture, use_fp16
        self.channels_last = use_fp16 and fp16_channels_last
        self.register_buffer("resample_filter", setup_filter(resample_filter))
        self.num_layers = 0
        conv0_in_channels = in_channels if in_channels > 0 else tmp_channels
        if in_channels == 0:
            self.fromrgb = Conv2dLayer(
                img_channels, tmp_channels, kernel_size=1, activation=activation, conv_clamp=conv_clamp
            )
            self.num_layers += 1
        self.conv0 = Conv2dLayer(
            conv0_in_channels, tmp_channels, kernel_size=3, activation=activation, conv_clamp=conv_clamp
        )
        self.conv1 = Conv2dLayer(
            tmp_channels,
            out_channels,
            kernel_size=3,
            activation=activation,
            down=2,
            resample_filter=resample_filter,
            conv_clamp=conv_clamp,
        )
        self.skip = Conv2dLayer(
            conv0_in_channels,
            out_channels,
            kernel_size=1,
            bias=False,
            down=2,
            resample_filter=resample_filter,
        )
        self.num_layers += 3

    def forward(self, x, img, force_fp32=False):
        dtype = torch.float16 if self.use_fp16 and not force_fp32 else torch.float32
        if x is not None:
            x = x.to(dtype=dtype)
        if self.in_channels == 0:
            img = img.to(dtype=dtype)
            y = self.fromrgb(img)
            x = x + y if x is not None else y
            img = None
        y = self.skip(x, gain=np.sqrt(0.5))
        x = self.conv0(x)
        x = self.conv1(x, gain=np.sqrt(0.5))
        return y.add_(x), img


@persistent_class
class MinibatchStdLayer(torch.nn.Module):
    def __init__(self, group_size, num_channels=1):
        super().__init__()
        self.group_size, self.num_channels = group_size, num_channels

    def forward(self, x):
        n, c, h, w = x.shape
        g = min(self.group_size, n) if self.group_size is not None else n
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = y.square().mean(dim=0)
        y = (y + 1e-8).sqrt()
        y = y.mean(dim=[2, 3, 4])
        y = y.reshape(-1, f, 1, 1)
        y = y.repeat(g, 1, h, w)
        return torch.cat([x, y], dim=1)


@persistent_class
class DiscriminatorEpilogue(torch.nn.Module):
    def __init__(
        self,
        in_channels,
        cmap_dim,
        resolution,
        img_channels,
        architecture="resnet",
        mbstd_group_size=4,
        mbstd_num_channels=1,
        activation="lrelu",
        conv_clamp=None,
        cfg=None,
    ):
        super().__init__()
        self.cfg, self.in_channels, self.cmap_dim, self.resolution = cfg, in_channels, cmap_dim, resolution
        self.img_channels, self.architecture = img_channels, architecture
        self.mbstd = (
            MinibatchStdLayer(mbstd_group_size, mbstd_num_channels) if mbstd_num_channels > 0 else None
        )
        self.conv = Conv2dLayer(
            in_channels + mbstd_num_channels,
            in_channels,
            kernel_size=3,
            activation=activation,
            conv_clamp=conv_clamp,
        )
        self.fc = FullyConnectedLayer(in_channels * (resolution**2), in_channels, activation=activation)
        self.out = FullyConnectedLayer(in_channels, 1 if cmap_dim == 0 else cmap_dim)

    def forward(self, x, img, cmap, force_fp32=False):
        x = x.to(dtype=torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        x = self.fc(x.flatten(1))
        x = self.out(x)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1 / np.sqrt(self.cmap_dim))
        return x


@persistent_class
class Discriminator(torch.nn.Module):
    def __init__(
        self,
        c_dim,
        img_resolution,
        img_channels,
        architecture="resnet",
        channel_base=32768,
        channel_max=512,
        num_fp16_res=0,
        conv_clamp=None,
        cmap_dim=None,
        block_kwargs=None,
        mapping_kwargs=None,
        epilogue_kwargs=None,
        cfg=None,
    ):
        super().__init__()
        self.cfg, self.c_dim, self.img_resolution = cfg, c_dim, img_resolution
        self.img_resolution_log2 = int(np.log2(img_resolution))
        self.img_channels = img_channels
        self.block_resolutions = [2**i for i in range(self.img_resolution_log2, 2, -1)]
        channels_dict = {res: min(channel_base // res, channel_max) for res in [*self.block_resolutions, 4]}
        fp16_resolution = max(2 ** (self.img_resolution_log2 + 1 - num_fp16_res), 8)
        cmap_dim = channels_dict[4] if cmap_dim is None else cmap_dim
        self.time_encoder = TemporalDifferenceEncoder(self.cfg)
        common = dict(img_channels=img_channels, architecture=architecture, conv_clamp=conv_clamp)
        total_c_dim = c_dim + self.time_encoder.get_dim()
        cur_layer_idx = 0
        k = self.cfg.sampling.num_frames_per_video
        for res in self.block_resolutions:
            in_channels = channels_dict[res] if res < img_resolution else 0
            tmp_channels, out_channels = channels_dict[res], channels_dict[res // 2]
            if res // 2 == self.cfg.concat_res:
                out_channels = out_channels // self.cfg.num_frames_div_factor
            if res == self.cfg.concat_res:
                in_channels = (in_channels // self.cfg.num_frames_div_factor) * k
            block = DiscriminatorBlock(
                in_channels,
                tmp_channels,
                out_channels,
                resolution=res,
                first_layer_idx=cur_layer_idx,
                use_fp16=(res >= fp16_resolution),
                cfg=self.cfg,
                **(block_kwargs or {}),
                **common,
            )
            setattr(self, f"b{res}", block)
            cur_layer_idx += block.num_layers
        self.mapping = MappingNetwork(
            z_dim=0, c_dim=total_c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None, **(mapping_kwargs or {})
        )
        self.b4 = DiscriminatorEpilogue(
            channels_dict[4],
            cmap_dim=cmap_dim,
            resolution=4,
            cfg=self.cfg,
            **(epilogue_kwargs or {}),
            **common,
        )

    def forward(self, img, c, t, **block_kwargs):
        k = self.cfg.sampling.num_frames_per_video
        c = torch.cat([c, self.time_encoder(t.view(-1, k))], dim=1)
        x = None
        for res in self.block_resolutions:
            if res == self.cfg.concat_res:
                x = x.view(-1, k, *x.shape[1:])
                x = x.view(x.shape[0], -1, *x.shape[3:])
            x, img = getattr(self, f"b{res}")(x, img, **block_kwargs)
        cmap = self.mapping(None, c)
        return {"image_logits": self.b4(x, img, cmap).squeeze(1)}


@persistent_class
class AugmentPipe(torch.nn.Module):
    """Stands for the authors' ADA pipeline in a snapshot (its ``p`` buffer)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("p", torch.zeros([]))


# ------------------------------------------------------------------------------------------------
# building and writing
# ------------------------------------------------------------------------------------------------
def make_cfg(
    *,
    c_dim=0,
    use_noise=False,
    resolution=32,
    z_dim=64,
    motion_dim=32,
    kernel_size=11,
    motion_z_distance=16,
    time_dim=32,
    min_period_len=8,
    max_period_len=256,
    max_num_frames=64,
    fps=30,
    concat_res=16,
):
    """A root config laid out like the authors' hydra config, and its generator / discriminator parts."""
    sampling = {
        "name": "random3_max32",
        "fps": fps,
        "max_num_frames": max_num_frames,
        "num_frames_per_video": 3,
        "type": "random",
        "total_dists": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048],
        "max_dist": 32,
    }
    root = DictConfig(
        {
            "dataset": {
                "name": "test",
                "c_dim": c_dim,
                "max_num_frames": max_num_frames,
                "fps": fps,
                "resolution": resolution,
            },
            "sampling": sampling,
            "model": {
                "name": "stylegan-v",
                "generator": {
                    "source": "networks",
                    "sampling": sampling,
                    "use_noise": use_noise,
                    "input": {"type": "temporal"},
                    "w_dim": z_dim,
                    "z_dim": z_dim,
                    "c_dim": c_dim,
                    "motion": {
                        "z_dim": motion_dim,
                        "v_dim": motion_dim,
                        "motion_z_distance": motion_z_distance,
                        "gen_strategy": "conv",
                        "kernel_size": kernel_size,
                        "use_fractional_t": True,
                        "fourier": True,
                    },
                    "time_enc": {
                        "cond_type": "concat_const",
                        "dim": time_dim,
                        "min_period_len": min_period_len,
                        "max_period_len": max_period_len,
                        "phase_dropout_std": 1.0,
                    },
                },
                "discriminator": {
                    "source": "networks",
                    "mbstd_group_size": 4,
                    "sampling": sampling,
                    "concat_res": concat_res,
                    "num_frames_div_factor": 2,
                    "dummy_c": False,
                },
                "loss_kwargs": {"source": "StyleGAN2Loss", "style_mixing_prob": 0.0, "pl_weight": 0.0},
            },
        }
    )
    return root, root.model.generator, root.model.discriminator


def build(
    *,
    c_dim=0,
    use_noise=False,
    resolution=32,
    channels=3,
    channel_base=1024,
    channel_max=32,
    seed=0,
    **cfg_kw,
):
    """G, D and G_ema as the authors' train.py builds them (mapping 2 layers, fp16 on the top 4
    resolutions, conv_clamp 256), with every parameter and buffer randomised."""
    torch.manual_seed(seed)
    root, g_cfg, d_cfg = make_cfg(c_dim=c_dim, use_noise=use_noise, resolution=resolution, **cfg_kw)
    common = dict(c_dim=c_dim, img_resolution=resolution, img_channels=channels)
    G = Generator(
        w_dim=g_cfg.w_dim,
        mapping_kwargs=EasyDict(num_layers=2, cfg=g_cfg),
        synthesis_kwargs=EasyDict(
            channel_base=channel_base, channel_max=channel_max, num_fp16_res=4, conv_clamp=256
        ),
        cfg=g_cfg,
        **common,
    )
    D = Discriminator(
        channel_base=channel_base,
        channel_max=channel_max,
        num_fp16_res=4,
        conv_clamp=256,
        block_kwargs=EasyDict(),
        mapping_kwargs=EasyDict(num_layers=2),
        epilogue_kwargs=EasyDict(mbstd_group_size=4),
        cfg=d_cfg,
        **common,
    )
    with torch.no_grad():  # trained-looking values: no zero biases, a used w_avg, non-zero noise strengths
        for net in (G, D):
            for name, p in net.named_parameters():
                if name.endswith("bias") or name.endswith("noise_strength"):
                    p.normal_(0, 0.1)
        G.mapping.w_avg.normal_(0, 0.5)
    G_ema = copy.deepcopy(G).eval()
    with torch.no_grad():
        for p in G_ema.parameters():
            p.add_(torch.randn_like(p) * 0.01)
    return G, D, G_ema, root


# where each class or function lives in the authors' code (what a pickle of it names)
AUTHORS_MODULES = [
    (PERSISTENCE_MODULE, _reconstruct_persistent_obj),
    ("src.dnnlib.util", EasyDict),
    ("training.layers", TemporalDifferenceEncoder),
    ("omegaconf.dictconfig", DictConfig),
    ("omegaconf.nodes", AnyNode),
    ("omegaconf.base", Metadata),
    ("omegaconf.base", ContainerMetadata),
]


@contextlib.contextmanager
def pickling_modules():
    """The authors' modules in sys.modules, holding the stand-ins named after theirs, while pickling."""
    names = {name for module, _ in AUTHORS_MODULES for name in _parents(module)}
    modules = {name: types.ModuleType(name) for name in names}
    originals = {}
    for module, obj in AUTHORS_MODULES:
        setattr(modules[module], obj.__name__, obj)
        originals[obj] = obj.__module__
        obj.__module__ = module
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        for obj, module in originals.items():
            obj.__module__ = module


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@contextlib.contextmanager
def storages_located_on(location: str, tensors):
    """torch's legacy storage pickles name ``location`` (e.g. "cuda:0") for these tensors' storages."""
    import torch.serialization as serialization

    pointers = {t.untyped_storage().data_ptr() for t in tensors}
    original = serialization.location_tag

    def location_tag(storage):
        return location if storage.data_ptr() in pointers else original(storage)

    serialization.location_tag = location_tag
    try:
        yield
    finally:
        serialization.location_tag = original


def _optimizer(module) -> torch.optim.Adam:
    """An Adam over ``module`` after one step, as the authors' loop builds it (lazy regularisation)."""
    module = copy.deepcopy(module).train().requires_grad_(True)
    opt = torch.optim.Adam(module.parameters(), lr=0.0025 * 16 / 17, betas=(0.0, 0.99 ** (16 / 17)), eps=1e-8)
    for p in module.parameters():
        p.grad = torch.randn_like(p)
    opt.step()
    return opt


def write_snapshot(path, G, D, G_ema, root, *, training_state: bool = True, protocol: int = 4) -> None:
    """``network-snapshot-*.pkl`` as the authors' training loop writes it."""
    snapshot = {
        "training_set_kwargs": dict(
            EasyDict(
                class_name="training.dataset.VideoFramesFolderDataset",
                path="data/test.zip",
                cfg=root.dataset,
                use_labels=False,
                max_size=10,
                xflip=False,
                resolution=G.img_resolution,
            )
        ),
    }
    entries = [("G", G), ("D", D), ("G_ema", G_ema)]
    optimizers = []
    if training_state:
        optimizers = [_optimizer(G), _optimizer(D)]
        entries += [
            ("augment_pipe", AugmentPipe()),
            ("G_opt", optimizers[0]),
            ("D_opt", optimizers[1]),
            (
                "vis",
                {
                    "grid_size": (7, 4),
                    "labels": np.zeros([28, 0], np.float32),
                    "ts": torch.arange(16.0)[None],
                },
            ),
            ("stats", {"cur_nimg": 123000, "cur_tick": 24, "batch_idx": 1921}),
        ]
    for name, module in entries:
        if isinstance(module, torch.nn.Module):
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        else:
            module = copy.deepcopy(module)
        snapshot[name] = module
    on_gpu = [
        t
        for opt in (snapshot.get("G_opt"), snapshot.get("D_opt"))
        if opt is not None
        for group in opt.param_groups
        for p in group["params"]
        for t in [p, *(v for v in opt.state[p].values() if isinstance(v, torch.Tensor) and v.ndim > 0)]
    ]
    with pickling_modules(), storages_located_on("cuda:0", on_gpu), open(path, "wb") as f:
        pickle.dump(snapshot, f, protocol=protocol)


def generate(G, z, c, t, motion_z):
    """Frames (N, C, T, H, W) of the authors' G in float32 (their forward, ``force_fp32``)."""
    with torch.no_grad():
        img = G(z=z, c=c, t=t, motion_z=motion_z, force_fp32=True, noise_mode="const")
    n, frames = t.shape
    return img.reshape(n, frames, *img.shape[1:]).permute(0, 2, 1, 3, 4)


def discriminate(D, video, c, t):
    """Logits (N,) of the authors' D for clips (N, C, 3, H, W) with frame times t (N, 3)."""
    with torch.no_grad():
        img = video.permute(0, 2, 1, 3, 4).reshape(-1, *video.shape[1:2], *video.shape[3:])
        return D(img, c, t, force_fp32=True)["image_logits"]
