// The widget gallery (npm run gallery, npm run build:gallery): every
// widget's fixtures, each in the light and the dark theme, without a host.
// A widget takes part by exporting View (its view component) and fixtures.

import { type ComponentType, StrictMode } from "react";
import { createRoot } from "react-dom/client";
import "./lib/widget.css";

interface GalleryModule {
  View?: ComponentType<Record<string, unknown>>;
  fixtures?: { name: string; props: Record<string, unknown> }[];
}

const modules = import.meta.glob<GalleryModule>("./widgets/*.tsx", { eager: true });

function Gallery() {
  const entries = Object.entries(modules).filter(([, m]) => m.View && m.fixtures);
  return (
    <main>
      <h1 className="gallery-title">Widget gallery</h1>
      {entries.map(([path, m]) => {
        const name = path.replace(/^.*\/(.*)\.tsx$/, "$1");
        const View = m.View as ComponentType<Record<string, unknown>>;
        return (
          <section key={name} aria-labelledby={`widget-${name}`}>
            <h2 id={`widget-${name}`}>{name}</h2>
            {(m.fixtures ?? []).map((f) => (
              <div key={f.name} className="gallery-row">
                <h3>{f.name}</h3>
                {(["light", "dark"] as const).map((theme) => (
                  <div key={theme} className="gallery-cell" data-theme={theme}>
                    <View {...f.props} />
                  </div>
                ))}
              </div>
            ))}
          </section>
        );
      })}
    </main>
  );
}

const root = document.getElementById("root");
if (!root) throw new Error("the gallery page has no #root element");
createRoot(root).render(
  <StrictMode>
    <Gallery />
  </StrictMode>,
);
