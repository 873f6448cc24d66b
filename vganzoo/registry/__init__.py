"""The registry: names of models and components, and how a name becomes a module.

Three tables live here and nowhere else:

* models (``register_model``): a factory building a whole :class:`~vganzoo.models.base.VideoGAN`
  from a JSON-able config, with its family, paper, default config, training recipe and pretrained
  weight specs;
* components (``register_component``): generators, discriminators and losses that models (and users)
  can mix by name;
* plugin names read from entry-point metadata (see :mod:`vganzoo.plugins`); a plugin is imported only
  when one of its names is used.

Names are lower-case words with ``-``, ``_`` and (for components) ``/``; a dot separates a pretrained
tag (``mocogan-rnn.digits``) and ``dist::name`` picks one plugin's registration explicitly.

This is the bottom layer: it imports nothing of vganzoo's but its errors. Two hooks connect it to the
layers above, both installed when the ``vganzoo`` package is imported:

* :func:`set_builtins_loader`: a function that imports the built-in families, losses and datasets
  (their modules register themselves); called once, before the first lookup;
* :func:`set_plugin_hook`: the entry-point side (:mod:`vganzoo.plugins`): which names plugins declare,
  how to import one, and which distribution is registering right now.
"""

from __future__ import annotations

from .building import (
    ModelSize,
    build_component,
    complete_saved_config,
    create,
    create_dataset,
    estimate_model,
    get_recipe,
    resolve_config,
)
from .core import (
    BUILTIN_SOURCE,
    COMPONENT_KINDS,
    FOLDER_DATASET,
    ComponentSpec,
    ModelSpec,
    PluginHook,
    PretrainedSpec,
    get_component,
    get_component_spec,
    get_model_spec,
    list_components,
    list_models,
    list_pretrained,
    qualified_component,
    register_component,
    register_model,
    reset_plugins,
    restore,
    set_builtins_loader,
    set_plugin_hook,
    split_tag,
)

__all__ = [
    "BUILTIN_SOURCE",
    "COMPONENT_KINDS",
    "FOLDER_DATASET",
    "ComponentSpec",
    "ModelSize",
    "ModelSpec",
    "PluginHook",
    "PretrainedSpec",
    "build_component",
    "complete_saved_config",
    "create",
    "create_dataset",
    "estimate_model",
    "get_component",
    "get_component_spec",
    "get_model_spec",
    "get_recipe",
    "list_components",
    "list_models",
    "list_pretrained",
    "qualified_component",
    "register_component",
    "register_model",
    "reset_plugins",
    "resolve_config",
    "restore",
    "set_builtins_loader",
    "set_plugin_hook",
    "split_tag",
]
