/* The series builder (templates/automations/builder.html).
 *
 * Everything works with buttons, links and forms (and without this script, by full page
 * loads). This adds: drawing a refused edit's message in place (htmx leaves 4xx answers
 * unswapped by default), dragging a step onto a "+" to move it there, collapsing a step's
 * branches (remembered per series in localStorage), and moving the focus to the side panel
 * when it opens, so keyboard users land where they were going.
 */
(function () {
  "use strict";

  function builder() {
    return document.getElementById("builder");
  }

  document.body.addEventListener("htmx:beforeSwap", function (event) {
    const target = event.detail.target;
    if (target && target.id === "builder" && event.detail.xhr.status === 400) {
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

  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (!builder() || !event.detail.target || event.detail.target.id !== "builder") return;
    applyCollapsed();
    const title = document.getElementById("panel-title");
    const problem = document.querySelector("#builder-panel .error, #builder-error");
    if (title) {
      title.setAttribute("tabindex", "-1");
      (problem || title).focus({ preventScroll: false });
    }
  });

  document.addEventListener("DOMContentLoaded", applyCollapsed);
  if (document.readyState !== "loading") applyCollapsed();
})();
