// The anywidget module of streamify_notebook's widgets, bundled into
// streamify_notebook/widget.js by build.mjs beside this file.

import { render } from "./view.js";

export default { render };
