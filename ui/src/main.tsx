import { render } from "preact";
import { App } from "./components/App";
import "./style.css";
import { applyTheme } from "./theme";

// The system's theme until the settings say otherwise.
applyTheme("system");

const root = document.getElementById("app");
if (root) render(<App />, root);
