"""`unigs ui`: a local Gradio app — brush regions, pick a task, see image, colormap and labelled masks.

Widgets only: every decision about inputs lives in `unigs.editor` (layers → masks, names, sizes, palette
swatches) and every run in `unigs.interactive` (the shared code path with the pipelines). Bad input ends
as one sentence in the status line, never as a traceback in the page.

    from unigs.ui import build_app
    build_app(load_unigs(default_model_path())).launch(server_name="127.0.0.1")
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from unigs import editor, interactive
from unigs.data.scenes import make_scene

log = logging.getLogger("unigs.ui")

TASK_CHOICES = [("Inpainting", "inpainting"), ("Synthesis (from a colormap)", "synthesis"),
                ("Referring segmentation", "referring"), ("Entity segmentation", "entity")]
SCENE_SEEDS = (20_000_001, 20_000_002, 20_000_003, 20_000_005, 20_000_008)  # held-out test split
DISPLAY_SIDE = 384  # outputs are shown at least this large (nearest-neighbour, so pixels stay honest)
HELP = {
    "inpainting": "Brush each region to fill on its own layer; type one line of names per layer.",
    "synthesis": "Paint each entity on its own layer (Ψ colours it by its centre), or load a colormap "
                 "PNG; type the names.",
    "referring": "Brush the region to search on a layer; type the names of what to find in it.",
    "entity": "Load a photo and run: every entity is segmented; no brush or names needed.",
}
# System fonts only: the default theme would fetch web fonts, and the app must work offline.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"])


def _editor_value(picture: np.ndarray) -> dict:
    """An editor value showing `picture` `(H, W, 3) uint8` with its long side at `editor.EDIT_SIDE`."""
    h, w = picture.shape[:2]
    scale = editor.EDIT_SIDE / max(h, w)
    size = (max(1, round(h * scale)), max(1, round(w * scale)))
    # nearest when enlarging (scenes, colormaps: keep hard edges), bicubic when shrinking photos
    shown = editor.resize_picture(picture, size, exact=scale >= 1)
    return {"background": shown, "layers": [], "composite": shown}


def _display(picture: np.ndarray) -> np.ndarray:
    h, w = picture.shape[:2]
    f = max(1, int(np.ceil(DISPLAY_SIDE / max(h, w))))
    return np.repeat(np.repeat(picture, f, axis=0), f, axis=1) if f > 1 else picture


class App:
    """The app's state: the loaded model, one cancel flag per browser session, an output folder."""

    def __init__(self, components: Any, out_dir: str | Path | None = None):
        self.components = components
        self.meta = components.meta
        self.side, self.grid = self.meta.image_size, self.meta.grid
        self.out_dir = Path(out_dir or tempfile.mkdtemp(prefix="unigs-ui-"))
        self.cancel_flags: dict[str, threading.Event] = {}
        self.multiple = interactive.size_multiple(components)

    # -- input handlers ---------------------------------------------------------------------------------

    def load_upload(self, path: str | None) -> tuple[Any, str]:
        if not path:
            return gr.skip(), ""
        try:
            picture = editor.load_picture(path)
        except (ValueError, FileNotFoundError) as err:
            return gr.skip(), f"Error: {err}"
        h, w = picture.shape[:2]
        return _editor_value(picture), f"Loaded a {w}×{h} picture. Brush a region, type names, run."

    def load_scene(self, seed: str | None) -> tuple[Any, str]:
        if not seed:
            return gr.skip(), ""
        scene = make_scene(int(seed), size=self.side)
        return _editor_value(scene.image), f"Held-out scene {seed}: {', '.join(scene.names)}."

    def blank_canvas(self) -> tuple[Any, str]:
        black = np.zeros((editor.EDIT_SIDE, editor.EDIT_SIDE, 3), np.uint8)
        return {"background": black, "layers": [], "composite": black}, "A black canvas: paint entities."

    # -- run --------------------------------------------------------------------------------------------

    def run(self, task, value, names_text, steps, guidance, seed, sampler, request: gr.Request,
            progress=gr.Progress()):  # noqa: B008 — Gradio's documented way to ask for progress
        flag = self.cancel_flags.setdefault(getattr(request, "session_hash", None) or "-", threading.Event())
        flag.clear()
        empty = (None, None, None, None)
        start = time.perf_counter()
        try:
            settings = interactive.RunSettings(steps=int(steps), guidance=float(guidance), seed=int(seed),
                                               sampler=str(sampler))
            picture, regions, names = interactive.prepare_inputs(task, value, names_text, self.side,
                                                                  self.multiple)
            progress(0.0, desc="preparing")
            result = interactive.run_task(
                self.components, task, picture, regions, settings, names=names, cancel=flag,
                on_step=lambda done, total: progress((done, total), desc="sampling", unit="steps"))
            folder = self.out_dir / f"run-{time.strftime('%Y%m%d-%H%M%S')}-{int(start * 1000) % 1000:03d}"
            files = interactive.write_outputs(result, folder)
        except interactive.Cancelled as err:
            return (*empty, f"{str(err).capitalize()}.")
        except (ValueError, FileNotFoundError) as err:
            return (*empty, f"Error: {err}")
        except Exception as err:  # a bug: say so in one line, keep the traceback in the server log
            log.exception("unigs ui: run failed")
            return (*empty, f"Error: the run failed ({type(err).__name__}: {err}); see the server log.")
        shown = _display(result.image)
        f = shown.shape[0] // result.image.shape[0]
        big = [np.repeat(np.repeat(m, f, axis=0), f, axis=1) for m in result.masks]
        h, w = result.image.shape[:2]
        status = (f"Done: {len(result.labels)} mask(s) in {time.perf_counter() - start:.1f} s "
                  f"({task}, {w}×{h} px, {settings.steps} {settings.sampler} steps).")
        return (shown, _display(result.colormap), (shown, list(zip(big, result.labels, strict=True))),
                [str(files[k]) for k in ("results.json", "masks.zip", "overlay.png")], status)

    def cancel(self, request: gr.Request) -> None:
        """Ask this session's run to stop after its current step; the run itself then says "Cancelled
        after k of N steps." in the status line. Cancel writes no status of its own: its answer could
        reach the page after the run's, and then "Cancelling…" would stay there for good."""
        flag = self.cancel_flags.get(getattr(request, "session_hash", None) or "-")
        if flag is not None:
            flag.set()

    # -- layout -----------------------------------------------------------------------------------------

    def build(self) -> gr.Blocks:
        with gr.Blocks(title="unigs", analytics_enabled=False) as blocks:
            gr.Markdown("## UniGS — one model that inpaints, synthesises and segments\n"
                        "Load a picture, brush regions (one layer per region), name them, pick a task, run.")
            with gr.Row():
                with gr.Column(scale=5):
                    task = gr.Radio(TASK_CHOICES, value="inpainting", label="Task", elem_id="task")
                    hint = gr.Markdown(HELP["inpainting"])
                    with gr.Row():
                        # a button, not a gr.File: a File box that holds a file hides its input, so a
                        # second picture (e.g. after an unreadable one) could not be loaded
                        upload = gr.UploadButton("Load a photo (or a colormap PNG)", type="filepath",
                                                 elem_id="upload")  # any file: editor.load_picture judges
                        with gr.Column():
                            scene = gr.Dropdown([str(s) for s in SCENE_SEEDS], value=None,
                                                label="…or a held-out scene", elem_id="scene")
                            blank = gr.Button("Blank canvas (synthesis)", size="sm")
                    canvas = gr.ImageEditor(
                        type="numpy", image_mode="RGBA", label="Brush: one layer per region",
                        layers=gr.LayerOptions(layers=["region 1"], allow_additional_layers=True),
                        brush=gr.Brush(default_size=24), transforms=(), sources=("upload", "clipboard"),
                        canvas_size=(editor.EDIT_SIDE, editor.EDIT_SIDE), elem_id="editor", height=560)
                    names = gr.Textbox(label="Names: one line per layer, comma-separated", lines=2,
                                       placeholder="ball\nsky, grass", elem_id="names")
                    with gr.Accordion("Sampler", open=False):
                        n_steps, scale = interactive.task_defaults("inpainting")
                        steps = gr.Slider(1, 200, value=n_steps, step=1, label="Steps", elem_id="steps")
                        guidance = gr.Slider(0, 15, value=scale, step=0.5, label="Guidance (≤ 1: off)")
                        seed = gr.Number(0, precision=0, label="Seed")
                        sampler = gr.Radio(["ddim", "dpm++"], value="ddim", label="Sampler")
                    with gr.Accordion(f"Palette Ψ: the colour of each {self.grid}×{self.grid} grid cell",
                                      open=False):
                        gr.Image(editor.palette_swatches(self.grid), show_label=False, interactive=False)
                    with gr.Row():
                        run = gr.Button("Run", variant="primary", elem_id="run")
                        stop = gr.Button("Cancel", variant="stop", elem_id="cancel")
                with gr.Column(scale=5):
                    status = gr.Markdown("Ready: load a picture, brush, name, run.", elem_id="status")
                    with gr.Row():
                        out_image = gr.Image(label="Image", format="png", interactive=False,
                                             elem_id="out-image")
                        out_colormap = gr.Image(label="Colormap", format="png", interactive=False,
                                                elem_id="out-colormap")
                    out_masks = gr.AnnotatedImage(label="Masks (legend below)", format="png",
                                                  elem_id="out-masks")
                    files = gr.File(label="Download: COCO results JSON, mask PNGs, overlay",
                                    file_count="multiple", interactive=False, elem_id="downloads")

            # each task starts from its pipeline's default sampling (what the CLI runs without flags)
            task.change(lambda t: (HELP[t], *interactive.task_defaults(t)), task, [hint, steps, guidance],
                        api_name="task_hint")
            upload.upload(self.load_upload, upload, [canvas, status], api_name="load_upload")
            scene.change(self.load_scene, scene, [canvas, status], api_name="load_scene")
            blank.click(self.blank_canvas, None, [canvas, status], api_name="blank_canvas")
            run.click(self.run, [task, canvas, names, steps, guidance, seed, sampler],
                      [out_image, out_colormap, out_masks, files, status], api_name="run",
                      concurrency_limit=1)
            stop.click(self.cancel, None, None, api_name="cancel", concurrency_limit=None, queue=False)
        return blocks


def build_app(components: Any, out_dir: str | Path | None = None) -> gr.Blocks:
    """The Gradio app for loaded `UniGSComponents`; outputs of runs go to `out_dir` (default: a temp dir)."""
    return App(components, out_dir).build()


def launch(components: Any, host: str = "127.0.0.1", port: int | None = None, block: bool = True,
           quiet: bool = False, out_dir: str | Path | None = None) -> gr.Blocks:
    """Serve the app on `host:port` (local only by default; `share` is never used). With `block=False`
    the server runs in a thread and the Blocks is returned (call `.close()`)."""
    blocks = build_app(components, out_dir)
    blocks.queue(default_concurrency_limit=1)
    blocks.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=not block,
                  quiet=quiet, show_error=False, max_file_size="50mb", theme=THEME,
                  footer_links=["settings"])
    return blocks
