"""The export menu of a lab page: the run as netCDF, the plots as PNG, the run as code.

Every entry is a plain button, so it works from the keyboard (Tab, Enter) as well as the mouse:

- **netCDF**: the server writes the frames received so far (:meth:`LabView.export_bytes`) and hands
  the bytes to the browser through a hidden text model whose change triggers a download there.
- **PNG**: drawn in the browser from the plots as they are on screen (Bokeh composes every canvas of
  the plot column into one image), so it is exactly what the user sees, zoom and overlays included.
- **Copy code**: puts the Python snippet that reproduces the run (``Lab.to_code``) on the clipboard;
  the snippet and the equivalent CLI line are also shown below the buttons.
"""
from __future__ import annotations

import base64
import json
from typing import Callable

import panel as pn

#: browser side of a server-made download: ``{"name", "mime", "data" (base64), "n"}`` → a file
_DELIVER_JS = """
if (!cb_obj.value) { return; }
const msg = JSON.parse(cb_obj.value);
const raw = atob(msg.data);
const bytes = new Uint8Array(raw.length);
for (let i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
const url = URL.createObjectURL(new Blob([bytes], {type: msg.mime}));
const a = document.createElement("a");
a.href = url; a.download = msg.name; a.style.display = "none";
document.body.appendChild(a); a.click(); a.remove();
setTimeout(() => URL.revokeObjectURL(url), 30000);
"""

#: browser side of "PNG": compose the plot column's canvases into one image and download it
_PNG_JS = """
const view = Bokeh.index.find_one(target);
const failed = () => {
  note.text = "The plots could not be drawn into an image (a plot not yet drawn?): try again after a frame.";
  setTimeout(() => { note.text = ""; }, 4000);
};
if (view == null) { failed(); return; }
try {
  view.export("png").to_blob().then((blob) => {
    const url = URL.createObjectURL(blob);
    const a = document.createElement("a");
    a.href = url; a.download = filename; a.style.display = "none";
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 30000);
  }).catch(failed);
} catch (e) { failed(); }
"""

#: browser side of "Copy code": the clipboard API where the page is a secure context (127.0.0.1 and
#: localhost are), else a selected hidden text area and execCommand("copy")
_COPY_JS = """
const text = source.value;
const done = (ok) => {
  note.text = ok ? "Copied to the clipboard." : "The browser refused the clipboard: select the code below and copy it.";
  setTimeout(() => { note.text = ""; }, 3000);
};
const fallback = () => {
  const area = document.createElement("textarea");
  area.value = text; area.style.position = "fixed"; area.style.opacity = "0";
  document.body.appendChild(area); area.select();
  let ok = false; try { ok = document.execCommand("copy"); } catch (e) {}
  area.remove(); done(ok);
};
if (navigator.clipboard && window.isSecureContext) {
  navigator.clipboard.writeText(text).then(() => done(true), fallback);
} else { fallback(); }
"""


class ExportMenu(pn.viewable.Viewer):
    """Export buttons of one :class:`~explore.ui.view.LabView`.

    Parameters
    ----------
    name
        The file stem of the downloads (the lab's name).
    run_bytes
        Returns the current run as netCDF bytes (raises ``ValueError`` when there is nothing yet).
    on_error
        Called with an exception the export raised (shown in the page's alert).
    plots
        The Panel layout whose plots "PNG" draws.
    """

    def __init__(self, name: str, run_bytes: Callable[[], bytes], on_error: Callable[[BaseException], None],
                 plots, code_markdown: str = "", code_python: str = ""):
        super().__init__()
        self.stem = name or "run"
        self._run_bytes = run_bytes
        self._on_error = on_error
        self._sent = 0
        self.netcdf_button = pn.widgets.Button(
            label="netCDF", disabled=True, sizing_mode="stretch_width",
            description="Download the current run (every frame received so far) as a netCDF file.",
        )
        self.png_button = pn.widgets.Button(  # (enabled with netCDF: before a frame some plots have no canvas)
            label="PNG", disabled=True, sizing_mode="stretch_width",
            description="Download the plots as one PNG image, as they are on screen.",
        )
        self.copy_button = pn.widgets.Button(
            label="Copy code", sizing_mode="stretch_width",
            description="Copy the Python snippet that reproduces this run (paste it in a notebook).",
        )
        # hidden carriers: the download payload and the snippet the copy button reads
        self._delivery = pn.widgets.TextInput(value="", visible=False)
        self._delivery.jscallback(value=_DELIVER_JS)
        self._source = pn.widgets.TextAreaInput(value=code_python, visible=False)
        self.netcdf_button.on_click(lambda event: self.send_run())
        self._note = pn.pane.HTML("", margin=(0, 10), sizing_mode="stretch_width")
        self.png_button.js_on_click(args={"target": plots, "filename": f"{self.stem}.png", "note": self._note},
                                    code=_PNG_JS)
        self.copy_button.js_on_click(args={"source": self._source, "note": self._note}, code=_COPY_JS)
        self.code = pn.pane.Markdown(code_markdown, sizing_mode="stretch_width")
        self._layout = pn.Card(
            pn.Row(self.netcdf_button, self.png_button, self.copy_button, sizing_mode="stretch_width"),
            self._note, self.code, self._delivery, self._source,
            title="Export", collapsed=False, sizing_mode="stretch_width",
        )

    def __panel__(self):
        return self._layout

    @property
    def run_available(self) -> bool:
        return not self.netcdf_button.disabled

    @run_available.setter
    def run_available(self, value: bool) -> None:
        self.netcdf_button.disabled = self.png_button.disabled = not value

    def set_code(self, markdown: str, python: str) -> None:
        """Show ``markdown`` and let "Copy code" copy ``python``."""
        self.code.object = markdown
        self._source.value = python

    def send(self, filename: str, data: bytes, mime: str = "application/octet-stream") -> None:
        """Make the browser download ``data`` as ``filename``."""
        self._sent += 1
        self._delivery.value = json.dumps({"name": filename, "mime": mime, "n": self._sent,
                                           "data": base64.b64encode(data).decode("ascii")})

    def send_run(self) -> bool:
        """Download the current run as ``<name>.nc``; False (and an alert) when there is none."""
        try:
            data = self._run_bytes()
        except Exception as exc:  # noqa: BLE001 - shown in the page, never raised into the server
            self._on_error(exc)
            return False
        self.send(f"{self.stem}.nc", data, "application/x-netcdf")
        return True


__all__ = ["ExportMenu"]
