// The console is served by drover serve under /console/ from the files this build writes
// (embedded into the binary by src/app/CMakeLists.txt); no inline scripts or styles, so the
// server's Content-Security-Policy can forbid them.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/console/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
