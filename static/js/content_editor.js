// The email editor (templates/campaigns/content/editor.html, layout.html): line numbers next
// to the MJML, jumping to the line of a problem, inserting blocks at the cursor, the preview's
// desktop / mobile width, and copying the generated plain-text part into its field. The
// preview itself is htmx: the form posts to the preview endpoint as it changes.
(function () {
  "use strict";

  function lineCount(text) {
    return text.split("\n").length;
  }

  function setupGutter(editor) {
    var gutter = editor.querySelector(".code-gutter");
    var area = editor.querySelector("textarea");
    if (!gutter || !area) return;
    var shown = 0;
    function update() {
      var count = lineCount(area.value);
      if (count !== shown) {
        var lines = [];
        for (var i = 1; i <= count; i++) lines.push(i);
        gutter.textContent = lines.join("\n");
        shown = count;
        markBadLines();
      }
      gutter.scrollTop = area.scrollTop;
    }
    area.addEventListener("input", update);
    area.addEventListener("scroll", function () { gutter.scrollTop = area.scrollTop; });
    area.addEventListener("keydown", function (event) {
      // Tab indents instead of leaving the editor (Shift+Tab still moves focus away).
      if (event.key === "Tab" && !event.shiftKey && !area.readOnly) {
        event.preventDefault();
        insertAt(area, "  ");
      }
    });
    update();
  }

  function editorFor(part) {
    return document.querySelector('.code-editor[data-part="' + (part || "mjml") + '"]');
  }

  // Lines named by the problems on the page get marked in their editor's gutter.
  function markBadLines() {
    document.querySelectorAll(".code-editor").forEach(function (editor) {
      var part = editor.dataset.part;
      var bad = {};
      document.querySelectorAll('.problems li[data-part="' + part + '"][data-line]').forEach(function (li) {
        if (li.dataset.line) bad[li.dataset.line] = true;
      });
      var gutter = editor.querySelector(".code-gutter");
      var area = editor.querySelector("textarea");
      if (!gutter || !area) return;
      var count = lineCount(area.value);
      var html = [];
      for (var i = 1; i <= count; i++) {
        html.push(bad[i] ? '<span class="bad-line">' + i + "</span>" : String(i));
      }
      gutter.innerHTML = html.join("\n");
      gutter.scrollTop = area.scrollTop;
    });
  }

  function gotoLine(part, line) {
    var editor = editorFor(part);
    var area = editor ? editor.querySelector("textarea") : document.getElementById("id_" + part);
    if (!area) return;
    var lines = area.value.split("\n");
    var start = 0;
    for (var i = 0; i < Math.min(line - 1, lines.length); i++) start += lines[i].length + 1;
    var end = start + (lines[line - 1] || "").length;
    area.focus();
    area.setSelectionRange(start, end);
    var lineHeight = parseFloat(getComputedStyle(area).lineHeight) || 20;
    area.scrollTop = Math.max(0, (line - 5) * lineHeight);
  }

  function insertAt(area, text) {
    var start = area.selectionStart, end = area.selectionEnd;
    area.value = area.value.slice(0, start) + text + area.value.slice(end);
    area.selectionStart = area.selectionEnd = start + text.length;
    area.dispatchEvent(new Event("input", { bubbles: true }));
  }

  function setWidth(width) {
    document.querySelectorAll(".preview-pane").forEach(function (pane) { pane.dataset.width = width; });
    document.querySelectorAll("[data-preview-width]").forEach(function (button) {
      var on = button.dataset.previewWidth === width;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.classList.toggle("outline", !on);
    });
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    var link = target.closest(".goto-line");
    if (link) {
      event.preventDefault();
      gotoLine(link.dataset.part, parseInt(link.dataset.line, 10));
      return;
    }
    var widthButton = target.closest("[data-preview-width]");
    if (widthButton) {
      setWidth(widthButton.dataset.previewWidth);
      return;
    }
    var copy = target.closest("[data-copy-text]");
    if (copy) {
      var source = document.querySelector(copy.dataset.copyText);
      var field = document.getElementById("id_text_body");
      if (source && field) {
        field.value = "value" in source ? source.value : source.textContent;
        field.dispatchEvent(new Event("input", { bubbles: true }));
        field.focus();
      }
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (!(select instanceof HTMLSelectElement) || !select.dataset.insertBlock) return;
    var blocks = JSON.parse(document.getElementById("content-blocks").textContent);
    var area = document.querySelector(select.dataset.insertBlock);
    var block = blocks.find(function (b) { return b.key === select.value; });
    if (area && block) {
      // Blocks are sections: put them on a line of their own.
      var before = area.value.slice(0, area.selectionStart);
      insertAt(area, (before && !before.endsWith("\n") ? "\n" : "") + block.mjml + "\n");
    }
    select.value = "";
  });

  document.addEventListener("htmx:afterSwap", markBadLines);

  function init() {
    document.querySelectorAll(".code-editor").forEach(setupGutter);
    markBadLines();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
