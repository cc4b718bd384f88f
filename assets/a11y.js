// Dash 4's own components (dash 4.4.1) draw markup that screen readers and axe-core refuse,
// and none of it can be changed through their props. This puts it right in the page, after
// each render: React sets these attributes once and never again (their props do not
// change), except aria-selected and the dropdown's tabindex, which are put right again
// whenever React or the component touches them.
//
// - RadioItems and Checklist: a role=listbox holding <label role=option> around a native
//   radio or checkbox (interactive inside interactive). The native inputs, each named by
//   its <label>, are what a keyboard and a screen reader use: the roles go. The page wraps
//   each group in a <fieldset> with a <legend> that names it.
// - Dropdown: an aria-hidden <input> in the tab order that hands focus to the real button
//   (tabindex -1), for Safari. The button takes the tab stop; the input leaves it. The
//   button is named by its value only: the field's <label for=id> is put first.
// - DatePickerRange: a <div> with aria-expanded and no role: it is the group of the two
//   date inputs.
// - Upload: react-dropzone's file input has no label: it takes the drop zone's text.
// - The clear buttons of Dropdown and DatePickerRange: an <a> with no href and an
//   aria-label, which a plain <a> may not carry. They are buttons; the date picker's, which
//   no other key can replace, takes the tab stop and Enter or Space.
// And one of ours: a form shown "locked" while its review waits for a confirmation is inert,
// so the keyboard cannot change what is being confirmed (a click cannot: pointer-events).
(function () {
  "use strict";

  function fixOptionLists(root) {
    root.querySelectorAll(".dash-options-list[role=listbox]:not(.dash-dropdown-options)").forEach(function (list) {
      list.removeAttribute("role");
    });
    root.querySelectorAll(".dash-options-list:not(.dash-dropdown-options) > .dash-options-list-option[role], " +
      ".dash-options-list:not(.dash-dropdown-options) > .dash-options-list-option[aria-selected]").forEach(function (label) {
      label.removeAttribute("role");
      label.removeAttribute("aria-selected");
    });
  }

  function fixDropdowns(root) {
    root.querySelectorAll(".dash-dropdown-focus-target:not([tabindex='-1'])").forEach(function (input) {
      input.tabIndex = -1;
    });
    root.querySelectorAll("button.dash-dropdown[tabindex='-1']").forEach(function (button) {
      button.tabIndex = 0;
    });
    root.querySelectorAll("button.dash-dropdown[id]:not([data-a11y-named])").forEach(function (button) {
      const label = document.querySelector("label[for='" + CSS.escape(button.id) + "']");
      if (!label) {
        return;
      }
      label.id = label.id || button.id + "-label";
      button.setAttribute("aria-labelledby", label.id + " " + (button.getAttribute("aria-labelledby") || ""));
      button.setAttribute("data-a11y-named", "");
    });
  }

  function fixDatePickers(root) {
    root.querySelectorAll(".dash-datepicker-input-wrapper:not([role])").forEach(function (wrapper) {
      wrapper.setAttribute("role", "group");
    });
  }

  function fixUploads(root) {
    root.querySelectorAll("input[type=file]:not([aria-label]):not([id])").forEach(function (input) {
      const zone = input.parentElement;
      const text = zone ? zone.textContent.replace(/\s+/g, " ").trim() : "";
      input.setAttribute("aria-label", text || "Choose a file");
    });
  }

  function fixLocked(root) {
    root.querySelectorAll(".locked:not([inert])").forEach(function (form) {
      form.inert = true;
      form.setAttribute("data-a11y-inert", "");
    });
    root.querySelectorAll("[data-a11y-inert]:not(.locked)").forEach(function (form) {
      form.inert = false;
      form.removeAttribute("data-a11y-inert");
    });
  }

  function fixClearButtons(root) {
    root.querySelectorAll("a.dash-dropdown-clear:not([role]), a.dash-datepicker-clear:not([role])").forEach(function (a) {
      a.setAttribute("role", "button");
      if (a.classList.contains("dash-datepicker-clear")) {
        a.tabIndex = 0;
      }
    });
  }

  document.addEventListener("keydown", function (event) {
    const target = event.target;
    if ((event.key === "Enter" || event.key === " ") && target instanceof Element
        && target.matches("a.dash-datepicker-clear[role=button]")) {
      event.preventDefault();
      target.click();
    }
  });

  function fix() {
    fixClearButtons(document);
    fixLocked(document);
    fixOptionLists(document);
    fixDropdowns(document);
    fixDatePickers(document);
    fixUploads(document);
  }

  let pending = false;
  function schedule() {
    if (!pending) {
      pending = true;
      // before the next paint, once for a whole render
      requestAnimationFrame(function () {
        pending = false;
        fix();
      });
    }
  }

  function start() {
    new MutationObserver(schedule).observe(document.body, {
      childList: true, subtree: true, attributes: true, attributeFilter: ["role", "aria-selected", "tabindex", "class"],
    });
    fix();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
