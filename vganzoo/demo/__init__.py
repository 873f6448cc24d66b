"""``vganzoo serve``: the zoo in a browser, a Gradio page over every weight set vganzoo can load.

    >>> from vganzoo.demo import serve
    >>> serve("mocogan-rnn.*", ["runs/my-run/model"], port=7860)     # blocks; Ctrl-C stops

    >>> from vganzoo.demo import Catalog, build_app, launch, wait
    >>> app = build_app(Catalog(folders=["my-weights/"]))             # a gradio.Blocks
    >>> url = launch(app, port=7861); ...; wait(app)

The page lists the weight sets (bundled, plugins', Hub-hosted, and the folders named), and for
the chosen one samples clips (seed, number, class label where the model is conditional, clip
length where the family draws any length, fps), walks between two seeds (content and motion
apart where the family splits them), and shows the model card and scores. The parts are:

* :mod:`vganzoo.demo.catalog`: the list of weight sets, loading (cached per weight set), what each
  one can do;
* :mod:`vganzoo.demo.clips`: one request's checks, limits and video files (no Gradio needed);
* :mod:`vganzoo.demo.app`: the Gradio page, launch settings that keep it offline, serving.

Gradio is the optional extra ``demo`` (``pip install 'vganzoo[demo]'``); it is imported only when a
page is built.
"""

from __future__ import annotations

from .app import build_app, launch, serve, wait
from .catalog import Catalog, DemoError, Entry, LoadedModel
from .clips import Limits, Result, generate, interpolate

__all__ = [
    "Catalog",
    "DemoError",
    "Entry",
    "Limits",
    "LoadedModel",
    "Result",
    "build_app",
    "generate",
    "interpolate",
    "launch",
    "serve",
    "wait",
]
