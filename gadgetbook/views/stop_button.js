// The Stop button of a live run. A click is told to the kernel twice: as a widget message (heard by
// kernels that can read messages while a cell runs) and as a kernel interrupt through the Jupyter
// server's REST API (heard by every kernel: the run ends the way the notebook's own stop button ends it).

function serverConfig() {
  const el = document.getElementById("jupyter-config-data");
  try {
    return el ? JSON.parse(el.textContent) : {};
  } catch (e) {
    return {};
  }
}

async function interruptKernel(kernelId) {
  const cfg = serverConfig();
  const base = (cfg.baseUrl || "/").replace(/\/?$/, "/");
  const headers = {};
  if (cfg.token) headers["Authorization"] = "token " + cfg.token;
  const xsrf = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  if (xsrf) headers["X-XSRFToken"] = decodeURIComponent(xsrf[1]);
  const url = base + "api/kernels/" + encodeURIComponent(kernelId) + "/interrupt";
  const resp = await fetch(url, { method: "POST", headers, credentials: "same-origin" });
  if (!resp.ok) throw new Error("interrupt answered " + resp.status);
}

function render({ model, el }) {
  const button = document.createElement("button");
  button.className = "gadgetbook-stop jupyter-widgets jupyter-button widget-button mod-danger";
  button.title = "End the run now and keep what arrived";
  const sync = () => {
    const running = model.get("running");
    button.disabled = !running || model.get("clicked") > 0;
    button.textContent = running ? (model.get("clicked") > 0 ? "Stopping" : "Stop") : "Stopped";
  };
  model.on("change:running", sync);
  model.on("change:clicked", sync);
  button.addEventListener("click", async () => {
    if (!model.get("running") || model.get("clicked") > 0) return;
    model.set("clicked", model.get("clicked") + 1);
    model.save_changes();
    const id = model.get("kernel_id");
    if (id) {
      try {
        await interruptKernel(id);
      } catch (e) {
        console.warn("gadgetbook: could not interrupt the kernel, waiting for it to read the click", e);
      }
    }
  });
  sync();
  el.appendChild(button);
  return () => model.off(null, sync);
}

export default { render };
