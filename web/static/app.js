// custodian console: the one script (CSP script-src 'self', no inline
// code). Clause 五(三), nothing left on the screen: when the session's
// idle limit (data-idle-ms on <body>, set by the server) passes without a
// request, the page is blanked and the browser goes to the login page.
// The server ends the session at the same limit in any case.
(function () {
  "use strict";
  var body = document.body;
  // Print buttons (certificates, inventories, reports): no inline handler.
  var buttons = document.querySelectorAll("button.print");
  for (var i = 0; i < buttons.length; i++) {
    buttons[i].addEventListener("click", function () { window.print(); });
  }
  var ms = parseInt(body.getAttribute("data-idle-ms"), 10);
  if (!(ms > 0)) {
    return;
  }
  var target = body.getAttribute("data-login") || "/login";
  window.setTimeout(function () {
    document.title = "";
    while (body.firstChild) {
      body.removeChild(body.firstChild);
    }
    body.className = "blank";
    window.location.replace(target);
  }, ms);
})();
