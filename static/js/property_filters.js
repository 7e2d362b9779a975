/* Event property filters drawn as rows (automations/widgets.py): property, comparison, value.
 * The filters live in the JSON textarea the form posts; every change is written back to it.
 * A value is typed the way its comparison reads it: a number for "greater than", a list for
 * "in" (comma-separated), two values for "between", none for "is set". Works on the page at
 * load and on content htmx swaps in (the builder's side panel).
 */
(function () {
  "use strict";

  function parse(text) {
    try {
      const value = JSON.parse(text || "[]");
      return Array.isArray(value) ? value : null;
    } catch (error) {
      return null;
    }
  }

  function typed(words, operator, raw) {
    const number = (text) => (text.trim() !== "" && !isNaN(Number(text)) ? Number(text) : text.trim());
    if (words.none.includes(operator)) return null;
    if (words.lists.includes(operator)) return raw.split(",").map((v) => v.trim()).filter(Boolean);
    if (operator === words.between) return raw.split(",").slice(0, 2).map(number);
    if (words.numeric.includes(operator)) return number(raw);
    return raw;
  }

  function shown(value) {
    if (value === null || value === undefined) return "";
    return Array.isArray(value) ? value.join(", ") : String(value);
  }

  function draw(root) {
    if (root.dataset.drawn) return;
    const textarea = document.getElementById(root.dataset.filtersFor);
    const words = JSON.parse(root.dataset.words);
    const filters = parse(textarea && textarea.value);
    if (!textarea || filters === null) return; // JSON the rows cannot show: the textarea stays the editor
    root.dataset.drawn = "true";
    const readonly = textarea.readOnly || textarea.disabled || !!textarea.closest("fieldset[disabled]");

    function write() {
      textarea.value = filters.length ? JSON.stringify(filters) : "";
      textarea.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function render() {
      root.replaceChildren();
      filters.forEach(function (filter, index) {
        const row = document.createElement("div");
        row.className = "filter-row";
        const property = document.createElement("input");
        property.value = filter.property || "";
        property.setAttribute("aria-label", words.property);
        property.placeholder = words.property;
        property.addEventListener("input", function () {
          filter.property = property.value.trim();
          write();
        });
        const operator = document.createElement("select");
        operator.setAttribute("aria-label", words.operator);
        words.operators.forEach(function (op) {
          const option = new Option(op.label, op.value, false, op.value === filter.operator);
          operator.add(option);
        });
        const value = document.createElement("input");
        value.value = shown(filter.value);
        value.setAttribute("aria-label", words.value);
        value.placeholder = words.value;
        function update() {
          filter.operator = operator.value;
          filter.value = typed(words, operator.value, value.value);
          value.hidden = words.none.includes(operator.value);
          write();
        }
        operator.addEventListener("change", update);
        value.addEventListener("input", update);
        value.hidden = words.none.includes(filter.operator);
        const remove = document.createElement("button");
        remove.type = "button";
        remove.className = "secondary outline";
        remove.textContent = "×";
        remove.setAttribute("aria-label", words.remove);
        remove.addEventListener("click", function () {
          filters.splice(index, 1);
          write();
          render();
        });
        [property, operator, value, remove].forEach(function (node) {
          node.disabled = readonly;
          row.append(node);
        });
        root.append(row);
      });
      if (!readonly) {
        const add = document.createElement("button");
        add.type = "button";
        add.className = "secondary outline filter-add";
        add.textContent = words.add;
        add.addEventListener("click", function () {
          filters.push({ property: "", operator: "eq", value: "" });
          render();
          root.querySelector(".filter-row:last-of-type input").focus();
        });
        root.append(add);
      }
    }
    render();
  }

  function drawAll(scope) {
    (scope || document).querySelectorAll("[data-filters-for]").forEach(draw);
  }
  document.addEventListener("DOMContentLoaded", function () {
    drawAll();
  });
  if (document.readyState !== "loading") drawAll();
  document.addEventListener("htmx:afterSettle", function (event) {
    drawAll(event.detail.elt);
  });
})();
