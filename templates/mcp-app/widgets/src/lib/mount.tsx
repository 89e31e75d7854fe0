import { type ComponentType, StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./widget.css";

/** mountWidget renders a widget into the page's #root (the build's entry calls it). */
export function mountWidget(Widget: ComponentType): void {
  const root = document.getElementById("root");
  if (!root) throw new Error("the widget page has no #root element");
  createRoot(root).render(
    <StrictMode>
      <Widget />
    </StrictMode>,
  );
}
