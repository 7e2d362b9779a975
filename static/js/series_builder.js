/* The series builder (templates/automations/builder.html).
 *
 * Everything works with buttons, links and forms (and without this script, by full page
 * loads). This adds: drawing a refused edit's message in place (htmx leaves 4xx answers
 * unswapped by default; the panel's email preview and test call answer 400 or 429 too),
 * dragging a step onto a "+" to move it there, collapsing a step's branches (remembered per
 * series in localStorage), and moving the focus to the side panel when it opens, so keyboard
 * users land where they were going.
 */
(function () {
  "use strict";

  function builder() {
    return document.getElementById("builder");
  }

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    const status = event.detail.xhr.status;
    // The panel's own parts (an email preview, a test call) say their refusals in place too.
    const inPanel = target && target.closest && target.closest("#builder-panel") && (status === 400 || status === 429);
    if (target && ((target.id === "builder" && status === 400) || inPanel)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  function storageKey() {
    const root = builder();
    return root ? "series-builder-collapsed-" + root.dataset.series : "";
  }

  function collapsed() {
    try {
      return new Set(JSON.parse(localStorage.getItem(storageKey()) || "[]"));
    } catch (error) {
      return new Set();
    }
  }

  function applyCollapsed() {
    const keys = collapsed();
    document.querySelectorAll("#builder .builder-card").forEach(function (card) {
      const node = card.closest(".tree-node");
      const branches = node && node.querySelector(":scope > .tree-branches");
      const toggle = card.querySelector(".collapse-toggle");
      if (!branches || !toggle) return;
      const hidden = keys.has(card.dataset.step);
      branches.hidden = hidden;
      toggle.setAttribute("aria-expanded", hidden ? "false" : "true");
      toggle.textContent = hidden ? "▸" : "▾";
    });
  }

  document.body.addEventListener("click", function (event) {
    const toggle = event.target.closest("#builder .collapse-toggle");
    if (!toggle) return;
    const key = toggle.closest(".builder-card").dataset.step;
    const keys = collapsed();
    if (keys.has(key)) keys.delete(key);
    else keys.add(key);
    localStorage.setItem(storageKey(), JSON.stringify(Array.from(keys)));
    applyCollapsed();
  });

  // Drag a card onto a "+" to move the step there; the server decides whether it may go.
  let dragged = null;
  document.body.addEventListener("dragstart", function (event) {
    const card = event.target.closest && event.target.closest("#builder .builder-card[draggable=true]");
    if (!card) return;
    dragged = card.dataset.step;
    event.dataTransfer.setData("text/plain", dragged);
    event.dataTransfer.effectAllowed = "move";
    builder().classList.add("is-dragging");
  });
  document.body.addEventListener("dragend", function () {
    dragged = null;
    const root = builder();
    if (root) root.classList.remove("is-dragging");
  });
  document.body.addEventListener("dragover", function (event) {
    if (dragged && event.target.closest && event.target.closest("#builder .tree-edge")) event.preventDefault();
  });
  document.body.addEventListener("drop", function (event) {
    const edge = event.target.closest && event.target.closest("#builder .tree-edge");
    if (!dragged || !edge) return;
    event.preventDefault();
    const url = builder().querySelector("form[hx-post]").getAttribute("hx-post");
    htmx.ajax("POST", url, {
      target: "#builder",
      select: "#builder",
      swap: "outerHTML",
      values: { op: "move", step: dragged, edge: edge.dataset.edge },
    });
  });

  // Zoom: a wide tree (many branches) shrinks to fit beside the panel; remembered per series.
  const ZOOM_STEPS = [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1];
  function zoomKey() {
    const root = builder();
    return root ? "series-builder-zoom-" + root.dataset.series : "";
  }
  function applyZoom(level) {
    const tree = document.querySelector("#builder .builder-tree");
    const controls = document.querySelector("#builder .zoom-controls");
    if (!tree || !controls) return;
    controls.hidden = false;
    const zoom = Math.min(1, Math.max(0.3, level || Number(localStorage.getItem(zoomKey())) || 1));
    tree.style.zoom = zoom === 1 ? "" : String(zoom);
    controls.querySelector(".zoom-level").textContent = Math.round(zoom * 100) + " %";
    localStorage.setItem(zoomKey(), String(zoom));
  }
  document.body.addEventListener("click", function (event) {
    const button = event.target.closest("#builder [data-zoom]");
    if (!button) return;
    const tree = document.querySelector("#builder .builder-tree");
    const current = Number(tree.style.zoom) || 1;
    let next = current;
    if (button.dataset.zoom === "in") next = ZOOM_STEPS.find((z) => z > current + 0.001) || 1;
    if (button.dataset.zoom === "out") next = ZOOM_STEPS.slice().reverse().find((z) => z < current - 0.001) || 0.4;
    if (button.dataset.zoom === "fit") {
      tree.style.zoom = "";
      next = Math.min(1, tree.clientWidth / tree.scrollWidth);
    }
    applyZoom(next);
  });

  // A card's button (move up, duplicate, …) keeps the keyboard focus on the redrawn card.
  let focused = null;
  document.body.addEventListener("htmx:beforeRequest", function (event) {
    // Only a request that redraws the builder: a panel part's own (the email preview loading
    // as the redrawn panel opens) must not forget the card's button.
    if (!event.detail.target || event.detail.target.id !== "builder") return;
    const active = document.activeElement;
    const card = active && active.closest && active.closest("#builder .builder-card");
    focused = card && active.matches("button[name=op]") ? { step: card.dataset.step, op: active.value } : null;
  });

  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (!builder() || !event.detail.target || event.detail.target.id !== "builder") return;
    applyCollapsed();
    applyZoom();
    if (focused) {
      const again = document.querySelector(
        '#builder .builder-card[data-step="' + CSS.escape(focused.step) + '"] button[value="' + focused.op + '"]'
      );
      focused = null;
      if (again) {
        again.focus();
        return;
      }
    }
    const title = document.getElementById("panel-title");
    const problem = document.querySelector("#builder-panel .error, #builder-error");
    if (title) {
      title.setAttribute("tabindex", "-1");
      (problem || title).focus({ preventScroll: false });
    }
  });

  function ready() {
    applyCollapsed();
    applyZoom();
  }
  document.addEventListener("DOMContentLoaded", ready);
  if (document.readyState !== "loading") ready();
})();
