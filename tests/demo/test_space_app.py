"""examples/spaces/app.py, the Hugging Face Space: it builds the same page from the library."""

from __future__ import annotations

import runpy

from demo_support import REPO, require_gradio

SPACE_APP = REPO / "examples" / "spaces" / "app.py"


def test_the_space_builds_the_demo_page(monkeypatch):
    require_gradio()
    import gradio as gr

    monkeypatch.setenv("VGANZOO_DEMO_MODELS", "mocogan-rnn.*")
    namespace = runpy.run_path(str(SPACE_APP), run_name="space_app")  # not __main__: no server
    demo = namespace["demo"]
    assert isinstance(demo, gr.Blocks)
    api_names = {fn.api_name for fn in demo.fns.values()}
    assert {"generate", "interpolate", "describe"} <= api_names
    dropdown = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "model")
    assert dropdown.choices == [("mocogan-rnn.digits (bundled)", "mocogan-rnn.digits")]
