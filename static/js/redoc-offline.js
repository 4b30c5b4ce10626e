// Redoc's side menu shows a logo from Redocly's CDN. Nothing on this app's pages is fetched
// from the internet (and the page's policy allows images from the app only), so the logo's
// address is replaced by an empty image before the browser would ask for it.
(function () {
  "use strict";
  const blank = "data:image/gif;base64,R0lGODlhAQABAAAAACH5BAEKAAEALAAAAAABAAEAAAICTAEAOw==";
  const external = /^https?:\/\//i;
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (this instanceof HTMLImageElement && name === "src" && external.test(String(value))) {
      value = blank;
    }
    return setAttribute.call(this, name, value);
  };
  const source = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: source.enumerable,
    get: source.get,
    set: function (value) {
      source.set.call(this, external.test(String(value)) ? blank : value);
    },
  });
})();
