// A tab kept open after its session ended (signed out elsewhere, idle too long, the account
// disabled) gets 401 from every callback, and Dash alone would just stop updating without a
// word. Say so, then go to the sign-in page, which brings the person back here.
(function () {
  const fetchBefore = window.fetch;
  let told = false;
  window.fetch = function (input, init) {
    return fetchBefore.apply(this, arguments).then(function (response) {
      const url = typeof input === "string" ? input : (input && input.url) || "";
      if (response.status === 401 && url.indexOf("/_dash-") !== -1 && !told) {
        told = true;
        const note = document.createElement("div");
        note.id = "signed-out";
        note.className = "signed-out";
        note.setAttribute("role", "alert");
        const back = "/login?next=" + encodeURIComponent(location.pathname + location.search);
        note.innerHTML = "<strong>You are signed out.</strong> Your session ended, or your account was " +
          "disabled; this page no longer updates. <a href=\"" + back + "\">Sign in again</a>";
        document.body.prepend(note);
        setTimeout(function () { location.assign(back); }, 5000);
      }
      return response;
    });
  };
})();
