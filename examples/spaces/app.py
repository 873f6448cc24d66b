"""vganzoo's demo page as a Hugging Face Space (Gradio SDK): the same page as `vganzoo serve`.

Spaces run ``python app.py`` with GRADIO_SERVER_NAME / GRADIO_SERVER_PORT set, which ``launch``
takes when host and port are None (without them: http://127.0.0.1:7860). VGANZOO_DEMO_MODELS
filters the weight sets listed (shell-style, default every one).
"""

import os

from vganzoo.demo import Catalog, build_app, launch, wait

demo = build_app(Catalog(os.environ.get("VGANZOO_DEMO_MODELS", "*")))  # `gradio app.py` looks for `demo`

if __name__ == "__main__":
    print(f"serving {launch(demo, host=None, port=None)}", flush=True)
    wait(demo)
