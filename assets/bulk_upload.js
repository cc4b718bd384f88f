// The bulk page's file input (dcc.Upload). Two things it did silently: a file over the
// upload limit was dropped without a word, and choosing the same file again (after fixing
// it in a spreadsheet) did nothing, because the input's value had not changed. Here: the
// first is said under the drop zone; the input is emptied after each choice, so the same
// file chosen again is read again.
(function () {
  function box(target) {
    return target && target.closest ? target.closest("#bulk-upload-box") : null;
  }
  function check(files, where) {
    const note = where.querySelector("#bulk-upload-note");
    const limit = Number(where.getAttribute("data-max-bytes"));
    const allowed = where.getAttribute("data-allowed-mb");
    const file = files && files[0];
    if (!note || !file) { return; }
    note.textContent = file.size > limit
      ? "“" + file.name + "” has " + (file.size / 1048576).toFixed(1) + " MB: at most " + allowed +
        " MB can be uploaded at once. Split it into smaller files."
      : "";
  }
  document.addEventListener("change", function (event) {
    const where = box(event.target);
    if (!where || event.target.type !== "file") { return; }
    check(event.target.files, where);
    const input = event.target;
    setTimeout(function () { input.value = ""; }, 0);  // after the upload has taken the file
  });
  document.addEventListener("drop", function (event) {
    const where = box(event.target);
    if (where && event.dataTransfer) { check(event.dataTransfer.files, where); }
  }, true);
})();
