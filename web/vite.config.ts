// The console is served by drover serve under /console/ from the files this build writes
// (embedded into the binary by src/app/CMakeLists.txt); no inline scripts or styles, so the
// server's Content-Security-Policy can forbid them. Its files refer to each other by
// relative paths (base "./"), so it works under any prefix a reverse proxy puts before it.
import { defineConfig } from "vite";

export default defineConfig({
  base: "./",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: false,
    target: "es2022",
  },
});
