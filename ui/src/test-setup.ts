import "@testing-library/jest-dom/vitest";
import { cleanup } from "@testing-library/svelte";
import { afterEach } from "vitest";
import { clearMocks } from "@tauri-apps/api/mocks";

// Unmount first: components unlisten from events on destroy, which needs the mocks.
afterEach(() => {
  cleanup();
  clearMocks();
});
