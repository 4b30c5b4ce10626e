// Small progressive enhancements; every page works without them.
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
    target.form.submit();
  }
});

// Selects with data-choices-url (partners, reps: hundreds of rows) carry only their selected
// choice; Tom Select searches the rest from that JSON list as the user types.
document.addEventListener("DOMContentLoaded", () => {
  if (typeof TomSelect === "undefined") {
    return;
  }
  const texts = document.body.dataset;
  const element = (className, text) => {
    const div = document.createElement("div");
    div.className = className;
    div.textContent = text;
    return div;
  };
  document.querySelectorAll("select[data-choices-url]").forEach((select) => {
    const url = new URL(select.dataset.choicesUrl, window.location.href);
    const blank = select.querySelector("option[value='']");
    new TomSelect(select, {
      valueField: "value",
      labelField: "text",
      searchField: ["text"],
      allowEmptyOption: true,
      placeholder: blank ? blank.textContent : "",
      preload: "focus",
      loadThrottle: 200,
      maxOptions: null,
      shouldLoad: () => true,
      load(query, callback) {
        url.searchParams.set("q", query);
        fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
          .then((response) => (response.ok ? response.json() : Promise.reject(response.status)))
          .then((data) => callback(data.results))
          .catch(() => callback());
      },
      render: {
        no_results: () => element("no-results", texts.choicesNone),
      },
    });
  });
});
