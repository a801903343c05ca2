import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it, vi } from "vitest";
import SettingsPanel from "./SettingsPanel.svelte";
import { connectionReport } from "../test/fixtures";

const loaded = {
  settings: { refreshIntervalHours: null, tokenWarningHours: null, startAtLogin: false },
  serverUrl: "http://127.0.0.1:8300",
  policyRefreshHours: 24,
  minRefreshHours: 1,
  policyWarningHours: [24, 6, 1],
  autostartFile: "/home/u/.config/autostart/license-console.desktop",
};

describe("SettingsPanel", () => {
  it("shows the policy's values and saves only what the user changed", async () => {
    const saved: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "get_settings") return loaded;
      if (cmd === "save_settings") {
        saved.push((args as { settings: unknown }).settings);
        return null;
      }
      return null;
    });
    render(SettingsPanel, { onClose: () => {} });
    const refresh = await screen.findByTestId("settings-refresh");
    expect(refresh).toHaveValue(24);
    expect(screen.getByTestId("settings-warnings")).toHaveValue("24, 6, 1");
    expect(screen.getByTestId("settings-server")).toHaveTextContent("http://127.0.0.1:8300");
    await fireEvent.input(refresh, { target: { value: "6" } });
    await fireEvent.click(screen.getByTestId("settings-autostart"));
    await fireEvent.click(screen.getByTestId("settings-save"));
    await vi.waitFor(() =>
      expect(saved).toEqual([{ refreshIntervalHours: 6, tokenWarningHours: null, startAtLogin: true }]),
    );
    expect(await screen.findByTestId("settings-saved")).toBeInTheDocument();
  });

  it("shows the server's refusal of a value outside the policy", async () => {
    mockIPC((cmd) => {
      if (cmd === "get_settings") return loaded;
      if (cmd === "save_settings")
        throw { code: "invalid_input", message: "The refresh interval must be between 1 and 24 hours." };
      return null;
    });
    render(SettingsPanel, { onClose: () => {} });
    await fireEvent.input(await screen.findByTestId("settings-warnings"), { target: { value: "48, 2" } });
    await fireEvent.click(screen.getByTestId("settings-save"));
    expect(await screen.findByTestId("error")).toHaveTextContent("between 1 and 24 hours");
  });
  it("tests the connection to the configured server", async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "get_settings") return loaded;
      return cmd === "test_connection" ? connectionReport() : null;
    });
    render(SettingsPanel, { onClose: () => {} });
    await fireEvent.click(await screen.findByTestId("test-connection"));
    expect(await screen.findByTestId("connection-rule")).toHaveTextContent("Component | Port | IP address");
    expect(calls.find(([c]) => c === "test_connection")?.[1]).toEqual({ serverUrl: null });
  });
});
