// OpenRisk web UI: small progressive enhancements; every page works without this file.
"use strict";
document.addEventListener("submit", (event) => {
  const form = event.target;
  const question = form instanceof HTMLFormElement ? form.dataset.confirm : undefined;
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("click", (event) => {
  const button = event.target instanceof Element ? event.target.closest("[data-copy]") : null;
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  field.select();
  if (navigator.clipboard) {
    navigator.clipboard.writeText(field.value).then(() => { button.textContent = "Copied"; });
  }
});
document.addEventListener("change", (event) => {
  const select = event.target;
  if (select instanceof HTMLSelectElement && select.classList.contains("scope")) {
    select.className = "scope scope-" + (select.value || "none");
  }
});
document.addEventListener("DOMContentLoaded", () => {
  const summary = document.querySelector("[data-autofocus]");
  if (summary instanceof HTMLElement) { summary.focus(); return; }
  // back from a form posted for one item (a sub-action, a mitigation): focus that item, so
  // keyboard and screen-reader users carry on where they were, not at the top of the page
  const target = location.hash ? document.getElementById(decodeURIComponent(location.hash.slice(1))) : null;
  if (target instanceof HTMLElement && target.tabIndex === -1) target.focus();
});
// Times are rendered in the browser's time zone: tell the server which one it is.
(() => {
  let zone = "";
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; } catch (e) { return; }
  if (!zone || document.cookie.split("; ").includes("openrisk_tz=" + zone)) return;
  if (!/^[A-Za-z0-9_+\/-]+$/.test(zone)) return;
  document.cookie = "openrisk_tz=" + zone + "; path=/; max-age=31536000; samesite=lax";
})();
// The register's "select every risk of this page" box.
document.addEventListener("change", (event) => {
  const box = event.target;
  if (!(box instanceof HTMLInputElement) || !box.dataset.selectAll) return;
  document.querySelectorAll(`input[type=checkbox][name="${box.dataset.selectAll}"]`).forEach((b) => {
    if (b instanceof HTMLInputElement) b.checked = box.checked;
  });
});
// Deleting a selection asks first, like every other delete button.
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.id !== "bulk") return;
  const action = form.querySelector("[name=bulk_action]");
  if (action instanceof HTMLSelectElement && action.value === "delete" &&
      !window.confirm("Delete the selected risks?")) event.preventDefault();
});
