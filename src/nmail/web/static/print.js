// The print view prints itself once it has loaded (images included).
"use strict";
window.addEventListener("load", () => { window.print(); });
