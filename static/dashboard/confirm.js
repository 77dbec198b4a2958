// A submit button with data-confirm="Question?" sends its form only once the person says OK in
// the browser's own dialog (focus starts on it, Enter confirms, Escape cancels). Listening on
// the document keeps it working on forms htmx swaps in.
(function () {
  "use strict";
  document.addEventListener("submit", function (event) {
    const button = event.submitter;
    const question = button && button.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });
})();
