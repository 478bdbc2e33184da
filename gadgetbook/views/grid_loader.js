// The interactive table's front end: Perspective's widget code (several MB) is asked from the kernel when a
// grid is first shown in a page, instead of living in every grid's widget state, so a notebook saved with its
// widget state stays small. The grid needs its kernel for its rows anyway.

let loading = null;

function perspective(model) {
  if (!loading) {
    loading = new Promise((resolve, reject) => {
      const onMessage = (msg, buffers) => {
        if (!msg || msg.type !== "gadgetbook-grid-code") return;
        model.off("msg:custom", onMessage);
        const style = document.createElement("style");
        style.textContent = new TextDecoder().decode(buffers[1]);
        document.head.appendChild(style);
        const url = URL.createObjectURL(new Blob([buffers[0]], { type: "text/javascript" }));
        import(/* webpackIgnore: true */ url).then(resolve, reject);
      };
      model.on("msg:custom", onMessage);
      model.send({ type: "gadgetbook-grid-code?" });
    });
    loading.catch(() => { loading = null; }); // a later grid asks again
  }
  return loading;
}

async function render({ model, el }) {
  const mod = await perspective(model);
  return mod.default.render({ model, el });
}

export default { render };
