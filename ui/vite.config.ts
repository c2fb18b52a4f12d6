import { defineConfig } from "vitest/config";

// Built into dist/, which the Tauri shell embeds (src-tauri/tauri.conf.json).
export default defineConfig({
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
