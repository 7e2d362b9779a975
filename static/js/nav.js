// The header's menu button (shown on narrow screens by app.css): opens and closes the main
// navigation, and closes it again on Escape.
document.addEventListener("DOMContentLoaded", () => {
  const button = document.querySelector(".menu-button");
  const nav = button && document.getElementById(button.getAttribute("aria-controls"));
  if (!button || !nav) return;
  const set = (open) => {
    button.setAttribute("aria-expanded", String(open));
    nav.classList.toggle("open", open);
  };
  button.addEventListener("click", () => set(button.getAttribute("aria-expanded") !== "true"));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && button.getAttribute("aria-expanded") === "true") {
      set(false);
      button.focus();
    }
  });
});
