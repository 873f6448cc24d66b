"""The Gradio page: pick a weight set, sample clips, walk between two seeds, read the model card.

:func:`build_app` makes the page (a ``gradio.Blocks``) over a :class:`Catalog`; :func:`launch`
starts it without blocking and :func:`wait` serves until Ctrl-C or SIGTERM; :func:`serve` does all
three (``vganzoo serve`` and the Hugging Face Space call it).

Sampling runs in Gradio's queue, off the request thread, one request at a time across the page's
events (they share one concurrency group), and a full queue refuses new requests. The page works
offline: Gradio's analytics and version check are off, its share tunnel is off unless asked for,
server-side rendering (a Node.js process), the PWA, the MCP server and the run-history page are
off, and the theme uses the fonts Gradio ships.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import tempfile
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .catalog import SCORE_REFERENCES, Catalog, DemoError, LoadedModel
from .clips import RANDOM_LABEL, Limits, Result, generate, interpolate, new_request_folder

__all__ = ["build_app", "launch", "serve", "wait"]

TITLE = "vganzoo demo"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
QUEUE_SIZE = 16  # requests waiting beyond this are refused ("queue is full")
CONCURRENCY_GROUP = "model"  # every event that loads or runs a model: one at a time
GRADIO_CACHE_SWEEP = (600, 3600)  # every 10 min, remove Gradio's cached result files older than 1 h
DEFAULT_CLIPS = 9  # a full 3x3 grid
DEFAULT_STEPS = 6
INSTALL_HINT = "the demo needs Gradio: pip install 'vganzoo[demo]'"

CSS = """
.gradio-container { max-width: 1180px !important; margin: 0 auto; }
#header h1 { margin-bottom: 0.1em; }
#header p { color: var(--body-text-color-subdued); margin-top: 0; }
#clips video { image-rendering: pixelated; background: #282828; }
#summary { min-height: 3em; }
#scores table { font-variant-numeric: tabular-nums; }
#files .label-clear-button { display: none !important; }  /* an output: nothing to remove */
"""


def _gradio() -> Any:
    """Import Gradio with its analytics off (read from the environment by some of its code paths)."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    try:
        import gradio
    except ImportError:
        raise DemoError(INSTALL_HINT) from None
    return gradio


def _theme(gr: Any) -> Any:
    # Fonts Gradio ships in its package (no font CDN), then the system's.
    return gr.themes.Default(
        primary_hue="indigo",
        neutral_hue="slate",
        font=[gr.themes.LocalFont("Source Sans Pro"), "ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=[gr.themes.LocalFont("IBM Plex Mono"), "ui-monospace", "monospace"],
    )


# ----------------------------------------------------------------------------------------------
# What the page shows about a weight set
# ----------------------------------------------------------------------------------------------
def _summary(loaded: LoadedModel) -> str:
    meta = loaded.metadata
    facts = [
        f"family **{loaded.family}**",
        f"{loaded.resolution}x{loaded.resolution}",
        "gray" if loaded.channels == 1 else f"{loaded.channels} channels",
        f"{loaded.frames} frames" + (" (any length)" if loaded.variable_frames else ""),
        f"{loaded.num_classes} classes" if loaded.num_classes else "unconditional",
    ]
    if isinstance(meta.get("dataset"), str):
        facts.append(f"trained on {meta['dataset'].split(' (')[0]}")
    about = [f"source: {loaded.entry.source}"]
    if isinstance(meta.get("paper"), str):
        about.append(meta["paper"])
    return " · ".join(facts) + "\n\n" + " · ".join(about)


def _walk_note(loaded: LoadedModel) -> str:
    if loaded.splits_content_and_motion:
        return (
            "This family splits **content** (what is shown) from **motion** (how it moves): row 1 walks "
            "the content from seed A to seed B with seed A's motion, row 2 the motion with seed A's "
            "content."
        )
    return (
        f"The {loaded.family} family does not split content from motion: one row walks all latents "
        "from seed A to seed B."
    )


def _scores_table(loaded: LoadedModel) -> str:
    if not loaded.scores:
        return "*This weight set records no scores.*"
    columns = ["this model"] + [c for c in SCORE_REFERENCES if any(c in row for _, row in loaded.scores)]
    lines = ["| metric | " + " | ".join(columns) + " |", "| --- |" + " ---: |" * len(columns)]
    for metric, row in loaded.scores:
        cells = [f"{row[c]:.4g}" if c in row else "" for c in columns]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    if len(columns) == 1:
        return "\n".join(lines)
    return "\n".join(lines) + f"\n\n*Beside this model's scores: {' and '.join(columns[1:])}, same protocol.*"


def _label_choices(loaded: LoadedModel) -> list[str]:
    return [RANDOM_LABEL] + [str(k) for k in range(loaded.num_classes)]


# ----------------------------------------------------------------------------------------------
# What the page does: the request handlers
# ----------------------------------------------------------------------------------------------
def _user_errors(gr: Any, fn: Callable[..., Any]) -> Callable[..., Any]:
    """Refusals become a message in the page (and an error for API clients), never a crash."""

    @functools.wraps(fn)  # keeps the parameter names the API page and clients show
    def wrapped(*args: Any) -> Any:
        try:
            return fn(*args)
        except DemoError as exc:  # the user's doing: a message, no traceback on the console
            raise gr.Error(str(exc), title="Refused", print_exception=False) from None
        except Exception as exc:  # a bug or an unexpected library error: keep serving, show the traceback
            raise gr.Error(f"internal error ({type(exc).__name__}): {exc}") from exc

    return wrapped


def _refuse_quietly(gr: Any, components: Iterable[Any]) -> None:
    """Gradio's own checks of an input (a slider's range, a dropdown's choices) raise ``gr.Error``
    with a traceback on the server's console; like a DemoError they are the user's doing, so the
    page shows the message and the log stays clean."""
    for component in components:
        check = component.preprocess

        def preprocess(payload: Any, _check: Callable[[Any], Any] = check) -> Any:
            try:
                return _check(payload)
            except gr.Error as exc:
                if not exc.print_exception:
                    raise
                raise gr.Error(exc.message, title="Refused", print_exception=False) from None

        component.preprocess = preprocess


def _shown(result: Result) -> tuple[Any, ...]:
    """A result as the page's outputs: video, files, caption, details."""
    return str(result.mp4), [str(result.mp4), str(result.gif)], result.caption, result.details


class _Handlers:
    """The page's requests over ``catalog``, within ``limits``, writing results under ``out_root``.

    The methods' names, parameter names and docstrings are what the API page and clients show.
    """

    def __init__(self, gr: Any, catalog: Catalog, limits: Limits, out_root: Path) -> None:
        self.gr = gr
        self.catalog = catalog
        self.limits = limits
        self.out_root = out_root

    def describe(self, name: str) -> tuple[Any, ...]:
        """What the page shows for weight set ``name``, and the controls it allows."""
        gr, limits = self.gr, self.limits
        try:
            loaded = self.catalog.get(name)
        except DemoError as exc:
            problem = f"**Cannot use this weight set.** {exc}"
            return (
                problem,
                gr.update(visible=False, value=RANDOM_LABEL),
                gr.update(visible=False),
                gr.update(),
                "",
                "",
                "",
                gr.update(interactive=False),
                gr.update(interactive=False),
            )
        label_text = "Class" + (f": {loaded.class_names}" if loaded.class_names else "")
        return (
            _summary(loaded),
            gr.update(
                choices=_label_choices(loaded),
                value=RANDOM_LABEL,
                visible=bool(loaded.num_classes),
                label=label_text,
            ),
            gr.update(
                value=loaded.frames,
                maximum=max(limits.max_frames, loaded.frames),
                visible=loaded.variable_frames,
            ),
            gr.update(value=min(max(loaded.fps, limits.min_fps), limits.max_fps)),
            _walk_note(loaded),
            _scores_table(loaded),
            loaded.card or "*This weight set has no model card.*",
            gr.update(interactive=True),
            gr.update(interactive=True),
        )

    def sample_clips(
        self, name: str, seed: Any, clips: Any, label: Any, frames: Any, fps: Any
    ) -> tuple[Any, ...]:
        """Sample CLIPS clips with SEED (CLASS 'random' or an index; FRAMES where the family allows)."""
        loaded = self.catalog.get(name)
        result = generate(
            loaded,
            seed=seed,
            clips=clips,
            label=label,
            frames=frames,
            fps=fps,
            out_dir=new_request_folder(self.out_root),
            limits=self.limits,
        )
        return _shown(result)

    def walk(self, name: str, seed: Any, end_seed: Any, steps: Any, label: Any, fps: Any) -> tuple[Any, ...]:
        """Interpolate from seed A to seed B in STEPS steps (content and motion walks where split)."""
        loaded = self.catalog.get(name)
        result = interpolate(
            loaded,
            seed=seed,
            end_seed=end_seed,
            steps=steps,
            label=label,
            fps=fps,
            out_dir=new_request_folder(self.out_root),
            limits=self.limits,
        )
        return _shown(result)


# ----------------------------------------------------------------------------------------------
# What the page looks like: the layout, piece by piece (created in page order)
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Controls:
    """Above the tabs: the weight set, what it is, and the settings both tabs share."""

    model: Any
    summary: Any
    label: Any
    fps: Any


@dataclass(frozen=True)
class _GenerateTab:
    seed: Any
    clips: Any
    frames: Any
    button: Any


@dataclass(frozen=True)
class _InterpolateTab:
    walk_note: Any
    seed_a: Any
    seed_b: Any
    steps: Any
    button: Any


@dataclass(frozen=True)
class _Outputs:
    video: Any
    caption: Any
    files: Any


@dataclass(frozen=True)
class _Accordions:
    scores: Any
    card: Any
    details: Any


@dataclass(frozen=True)
class _Page:
    controls: _Controls
    generate: _GenerateTab
    interpolate: _InterpolateTab
    outputs: _Outputs
    accordions: _Accordions

    def described(self) -> list[Any]:
        """What :meth:`_Handlers.describe` updates, in the order it returns them."""
        return [
            self.controls.summary,
            self.controls.label,
            self.generate.frames,
            self.controls.fps,
            self.interpolate.walk_note,
            self.accordions.scores,
            self.accordions.card,
            self.generate.button,
            self.interpolate.button,
        ]

    def results(self) -> list[Any]:
        """What a Generate or Interpolate request fills, in the order :func:`_shown` returns them."""
        return [self.outputs.video, self.outputs.files, self.outputs.caption, self.accordions.details]


def _controls(gr: Any, choices: list[tuple[str, str]], limits: Limits) -> _Controls:
    model = gr.Dropdown(
        choices=choices,
        value=choices[0][1],
        label="Weight set",
        elem_id="model",
        filterable=False,
    )
    summary = gr.Markdown(elem_id="summary")
    with gr.Row():
        label = gr.Dropdown(
            choices=[RANDOM_LABEL],
            value=RANDOM_LABEL,
            label="Class",
            allow_custom_value=True,
            elem_id="label",
            min_width=140,
        )
        fps = gr.Slider(
            minimum=limits.min_fps,
            maximum=min(limits.max_fps, 30),
            value=8,
            step=1,
            label="fps",
            elem_id="fps",
            min_width=180,
        )
    return _Controls(model, summary, label, fps)


def _generate_tab(gr: Any, limits: Limits) -> _GenerateTab:
    with gr.Tab("Generate", elem_id="generate-tab"):
        seed = gr.Number(
            value=0,
            label="Seed",
            precision=0,
            minimum=0,
            maximum=limits.max_seed,
            elem_id="seed",
        )
        clips = gr.Slider(
            minimum=1,
            maximum=limits.max_clips,
            value=min(DEFAULT_CLIPS, limits.max_clips),
            step=1,
            label="Clips",
            elem_id="clips-count",
        )
        frames = gr.Slider(
            minimum=1,
            maximum=limits.max_frames,
            value=16,
            step=1,
            label="Frames per clip",
            visible=False,
            elem_id="frames",
        )
        button = gr.Button("Generate", variant="primary", elem_id="generate")
    return _GenerateTab(seed, clips, frames, button)


def _interpolate_tab(gr: Any, limits: Limits) -> _InterpolateTab:
    with gr.Tab("Interpolate", elem_id="interpolate-tab"):
        walk_note = gr.Markdown()
        with gr.Row():
            seed_a = gr.Number(value=0, label="Seed A", precision=0, minimum=0, maximum=limits.max_seed)
            seed_b = gr.Number(value=1, label="Seed B", precision=0, minimum=0, maximum=limits.max_seed)
        steps = gr.Slider(
            minimum=2,
            maximum=limits.max_steps,
            value=min(DEFAULT_STEPS, limits.max_steps),
            step=1,
            label="Steps",
        )
        button = gr.Button("Interpolate", variant="primary", elem_id="interpolate")
    return _InterpolateTab(walk_note, seed_a, seed_b, steps, button)


def _outputs(gr: Any) -> _Outputs:
    video = gr.Video(
        label="Clips",
        autoplay=True,
        loop=True,
        buttons=["download"],
        interactive=False,
        elem_id="clips",
    )
    caption = gr.Markdown(elem_id="caption")
    files = gr.File(label="Download (MP4, GIF)", file_count="multiple", interactive=False, elem_id="files")
    return _Outputs(video, caption, files)


def _accordions(gr: Any) -> _Accordions:
    with gr.Accordion("Scores", open=True):
        scores = gr.Markdown(elem_id="scores")
    with gr.Accordion("Model card", open=False):
        card = gr.Markdown(elem_id="card")
    with gr.Accordion("Request details", open=False):
        details = gr.JSON(elem_id="details")
    return _Accordions(scores, card, details)


def _layout(gr: Any, choices: list[tuple[str, str]], limits: Limits) -> _Page:
    """The page's components, inside the open ``gradio.Blocks``: settings left, results right."""
    gr.Markdown(
        "# vganzoo: video GANs in the browser\n"
        "Pick a weight set, set a seed and press **Generate**; **Interpolate** walks between two "
        "seeds. Same seed, same clips as `vganzoo sample NAME --seed SEED --n CLIPS`.",
        elem_id="header",
    )
    with gr.Row(equal_height=False):
        with gr.Column(scale=2, min_width=320):
            controls = _controls(gr, choices, limits)
            with gr.Tabs():
                generate_tab = _generate_tab(gr, limits)
                interpolate_tab = _interpolate_tab(gr, limits)
        with gr.Column(scale=3, min_width=360):
            outputs = _outputs(gr)
    accordions = _accordions(gr)
    return _Page(controls, generate_tab, interpolate_tab, outputs, accordions)


# ----------------------------------------------------------------------------------------------
# The page
# ----------------------------------------------------------------------------------------------
def _wire(gr: Any, app: Any, page: _Page, handlers: _Handlers) -> None:
    """The events: all in one concurrency group, so one request runs at a time across the page."""
    controls, gen, walk = page.controls, page.generate, page.interpolate
    shared = {"concurrency_id": CONCURRENCY_GROUP, "concurrency_limit": 1}
    described = page.described()
    controls.model.change(
        handlers.describe, inputs=controls.model, outputs=described, api_name="describe", **shared
    )
    app.load(handlers.describe, inputs=controls.model, outputs=described, api_name=False, **shared)
    generate_inputs = [controls.model, gen.seed, gen.clips, controls.label, gen.frames, controls.fps]
    walk_inputs = [controls.model, walk.seed_a, walk.seed_b, walk.steps, controls.label, controls.fps]
    _refuse_quietly(gr, {id(c): c for c in generate_inputs + walk_inputs}.values())
    gen.button.click(
        _user_errors(gr, handlers.sample_clips),
        inputs=generate_inputs,
        outputs=page.results(),
        api_name="generate",
        **shared,
    )
    walk.button.click(
        _user_errors(gr, handlers.walk),
        inputs=walk_inputs,
        outputs=page.results(),
        api_name="interpolate",
        **shared,
    )


def build_app(
    catalog: Catalog | None = None,
    *,
    limits: Limits | None = None,
    out_root: str | Path | None = None,
) -> Any:
    """The demo page as a ``gradio.Blocks`` over ``catalog`` (default: every registered weight set).

    Results are written under ``out_root`` (default: a new temporary folder, removed with the app
    or at exit); Gradio serves only those files and its own.
    """
    gr = _gradio()
    catalog = catalog if catalog is not None else Catalog()
    limits = limits or Limits()
    own_folder = out_root is None
    out_root = Path(tempfile.mkdtemp(prefix="vganzoo-demo-") if own_folder else out_root)
    handlers = _Handlers(gr, catalog, limits, out_root)
    with gr.Blocks(
        title=TITLE, analytics_enabled=False, delete_cache=GRADIO_CACHE_SWEEP, fill_width=False
    ) as app:
        page = _layout(gr, catalog.choices(), limits)
        _wire(gr, app, page, handlers)
    app.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    if own_folder:
        weakref.finalize(app, shutil.rmtree, out_root, ignore_errors=True)  # with the app, or at exit
    return app


def launch(
    app: Any,
    *,
    host: str | None = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    share: bool = False,
    quiet: bool = True,
) -> str:
    """Start serving ``app`` in the background; returns the local URL.

    ``host``/``port`` None take Gradio's environment (``GRADIO_SERVER_NAME``/``_PORT``, as on
    Spaces). ``share=True`` asks Gradio for a public gradio.live tunnel, the one thing here that
    needs the network.
    """
    gr = _gradio()
    if port is not None and not (isinstance(port, int) and 0 < port < 65536):
        raise DemoError(f"port must be from 1 to 65535, got {port!r}")
    _app, local_url, share_url = app.launch(
        server_name=host,
        server_port=port,
        share=share,
        prevent_thread_lock=True,
        quiet=quiet,
        show_error=True,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        run_history=False,
        footer_links=[],
        max_file_size="1mb",  # the page uploads nothing; bound what a client may push
        theme=_theme(gr),
        css=CSS,
    )
    return share_url or local_url


def wait(app: Any) -> None:
    """Serve until Ctrl-C or SIGTERM, then close the server."""
    stop = threading.Event()
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.is_set():
            stop.wait(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        app.close()


def serve(
    pattern: str | Sequence[str] = "*",
    folders: Iterable[str | Path] = (),
    *,
    host: str | None = DEFAULT_HOST,
    port: int | None = DEFAULT_PORT,
    share: bool = False,
    device: str = "auto",
    limits: Limits | None = None,
    ready: Callable[[str, Catalog], None] | None = None,
) -> None:
    """Build the page over the weight sets matching ``pattern`` plus ``folders``, serve it until
    Ctrl-C or SIGTERM. The first weight set is loaded before the server starts; ``ready(url,
    catalog)`` is called once it serves."""
    _gradio()  # the install hint before any model is loaded
    catalog = Catalog(pattern, folders, device=device)
    with contextlib.suppress(DemoError):  # a weight set that cannot load says why in the page
        catalog.get(next(iter(catalog.entries)))  # the page opens on it: load it before serving
    app = build_app(catalog, limits=limits)
    try:
        url = launch(app, host=host, port=port, share=share)
    except BaseException:
        app.close()
        raise
    if ready is not None:
        ready(url, catalog)
    wait(app)
