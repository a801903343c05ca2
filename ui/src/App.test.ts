import { render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it } from "vitest";
import App from "./App.svelte";
import { licensedView, unlicensedView } from "./test/fixtures";

function backend(view: unknown) {
  mockIPC((cmd) => {
    if (cmd === "app_info") return { name: "License Console", version: "9.9.9" };
    if (cmd === "license_view") return view;
    throw new Error(`unexpected command ${cmd}`);
  }, { shouldMockEvents: true });
}

describe("App", () => {
  it("shows the not licensed screen with the server URL prefilled, and the version", async () => {
    backend(unlicensedView());
    render(App);
    expect(screen.getByRole("heading", { level: 1 })).toHaveTextContent("Manage license account");
    expect(await screen.findByTestId("license-status")).toHaveTextContent("Not licensed");
    expect(await screen.findByTestId("app-version")).toHaveTextContent("License Console 9.9.9");
    expect(await screen.findByDisplayValue("http://127.0.0.1:8300")).toBeInTheDocument();
  });

  it("shows the panel when the console is licensed", async () => {
    backend(licensedView());
    render(App);
    expect(await screen.findByTestId("field-server-id")).toHaveTextContent("SRV-7QK2M");
    expect(screen.getByTestId("license-status")).toHaveTextContent("Licensed");
  });

  it("still shows the not licensed screen when the Rust side fails", async () => {
    mockIPC(() => {
      throw new Error("boom");
    }, { shouldMockEvents: true });
    render(App);
    expect(await screen.findByText("This server is not licensed yet")).toBeInTheDocument();
    expect(await screen.findByRole("alert")).toHaveTextContent("boom");
    expect(screen.queryByTestId("app-version")).toBeNull();
  });
});
