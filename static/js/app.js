// Behaviour that templates ask for with data attributes, so that no page needs an inline script or an inline
// event handler: the Content-Security-Policy runs scripts from our static files only.
(function () {
  // <select data-autosubmit>: submit its form as soon as the choice changes.
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (!field.matches || !field.matches("[data-autosubmit]") || !field.form) return;
    if (field.form.requestSubmit) field.form.requestSubmit(); else field.form.submit();
  });
})();

// htmx does not swap 4xx answers by default, so a refused action would do nothing visible. An error answer
// that is a fragment (our views answer htmx with the part they re-render, error included) is swapped like any
// other; a whole error page (401, 403, 404, 429, 500) is not swapped in: its reason or heading is shown next to
// where the user acted, in a live region, with the status, and what the user typed stays where it was.
(function () {
  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    if (xhr.status < 400) return;
    var text = xhr.responseText || "";
    if (xhr.status < 500 && !/^\s*<!doctype/i.test(text) && text.trim()) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
      return;
    }
    event.detail.shouldSwap = false;
    var heading = "";
    try {
      var page = new DOMParser().parseFromString(text, "text/html");
      // The page's reason when it has one (data-message: 400, 401, 403), else its heading, else its title.
      // One selector at a time: a selector list would return the first match in document order, the title.
      var found = ["[data-message]", "main h1", "h1", "title"].map(function (s) { return page.querySelector(s); })
        .filter(Boolean)[0];
      heading = found ? found.textContent.trim() : "";
    } catch (e) { heading = ""; }
    showError(event.detail.elt, "Not done (" + xhr.status + ")" + (heading ? ": " + heading : "."));
  });
  document.addEventListener("htmx:sendError", function (event) {
    showError(event.detail.elt, "Not done: the server could not be reached. Check your connection and try again.");
  });

  function showError(element, message) {
    var anchor = (element && element.closest && element.closest("form, li, tr, .card, div")) || document.querySelector("main");
    var box = anchor.querySelector(":scope > .htmx-error") || document.createElement("p");
    box.className = "error htmx-error";
    box.setAttribute("role", "alert");
    box.textContent = message;
    if (!box.parentNode) anchor.insertBefore(box, anchor.firstChild);
  }
})();

// A box of wide content (.scroll: a table wider than a phone) scrolls sideways inside itself, and says so: it
// is wrapped in .scroll-frame, which shades the edge with more content and is followed by a line of text; both
// follow the scroll position. Boxes inside htmx-swapped fragments are set up after the swap.
(function () {
  function update(box) {
    var frame = box.parentNode, hidden = box.scrollWidth - box.clientWidth;
    frame.classList.toggle("more-right", hidden > 1 && box.scrollLeft < hidden - 1);
    frame.classList.toggle("more-left", hidden > 1 && box.scrollLeft > 1);
    var cue = frame.nextSibling;
    if (cue && cue.classList && cue.classList.contains("scroll-cue")) {
      cue.textContent = frame.classList.contains("more-right") ? "Scroll sideways for more columns →" : "← More columns to the left";
    }
  }
  function setUp(root) {
    root.querySelectorAll(".scroll").forEach(function (box) {
      if (!box.parentNode.classList.contains("scroll-frame")) {
        var frame = document.createElement("div"), cue = document.createElement("p");
        frame.className = "scroll-frame";
        cue.className = "scroll-cue";
        cue.setAttribute("aria-hidden", "true");
        box.parentNode.insertBefore(frame, box);
        frame.appendChild(box);
        frame.parentNode.insertBefore(cue, frame.nextSibling);
        box.addEventListener("scroll", function () { update(box); }, {passive: true});
      }
      update(box);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { setUp(document); });
  document.addEventListener("htmx:afterSettle", function () { setUp(document); });
  window.addEventListener("resize", function () { setUp(document); });
})();

// A login rotates the CSRF token (Django's rotate_token). A page opened before it, as when the session ended
// and the user logged in again in another tab, still holds the old token in <body hx-headers> and in its
// forms, so its next request was refused with Django's CSRF page and the text typed was lost. Every request
// takes the current token from the cookie instead (not HttpOnly, as Django's default leaves it).
(function () {
  function currentToken() {
    var found = document.cookie.split("; ").filter(function (c) { return c.indexOf("csrftoken=") === 0; })[0];
    return found ? decodeURIComponent(found.slice("csrftoken=".length)) : "";
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var token = currentToken();
    if (!token) return;
    event.detail.headers["X-CSRFToken"] = token;
    // Django reads a form's own field before the header: an hx-post of a form sends both.
    var parameters = event.detail.parameters;
    if (parameters && (parameters.csrfmiddlewaretoken !== undefined)) parameters.csrfmiddlewaretoken = token;
  });
  document.addEventListener("submit", function (event) {
    var field = event.target.querySelector && event.target.querySelector("input[name=csrfmiddlewaretoken]");
    var token = currentToken();
    if (field && token) field.value = token;
  }, true);
})();

// A poll (hx-trigger="every ...") whose session has ended stops asking: it got a 401 every few seconds for as
// long as the tab stayed open. The element is replaced by a copy without the trigger.
(function () {
  document.addEventListener("htmx:afterRequest", function (event) {
    var element = event.detail.elt, xhr = event.detail.xhr;
    if (!xhr || xhr.status !== 401 || !element.getAttribute) return;
    var trigger = element.getAttribute("hx-trigger") || "";
    if (trigger.indexOf("every") === -1) return;
    var copy = element.cloneNode(true);
    copy.removeAttribute("hx-trigger");
    element.replaceWith(copy);
  });
})();
