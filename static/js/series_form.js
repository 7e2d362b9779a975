// The series form shows only the trigger fields of the chosen kind of trigger; without
// JavaScript every field shows and the server takes the ones the kind reads.
(function () {
  "use strict";
  var form = document.getElementById("series-form");
  if (!form) return;
  var select = form.querySelector("select[name=trigger_type]");
  if (!select) return;
  var builtIn = ["event", "list", "segment", "promo", "api"];
  function update() {
    var chosen = builtIn.indexOf(select.value) >= 0 ? select.value : "other";
    form.querySelectorAll("[data-trigger-types]").forEach(function (box) {
      var types = box.getAttribute("data-trigger-types").split(" ");
      box.hidden = types.indexOf(chosen) < 0 && !box.classList.contains("field-error");
    });
  }
  select.addEventListener("change", update);
  update();
})();
