import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it, vi } from "vitest";
import LicensePanel from "./LicensePanel.svelte";
import { connectionReport, licensedView } from "../test/fixtures";

describe("LicensePanel", () => {
  it("shows every field of the license account and each license with its assignments", () => {
    mockIPC(() => null);
    render(LicensePanel, { view: licensedView(), onChange: () => {} });
    expect(screen.getByTestId("license-status")).toHaveTextContent("Licensed");
    expect(screen.getByTestId("field-server-id")).toHaveTextContent("SRV-7QK2M");
    expect(screen.getByTestId("field-features")).toHaveTextContent("xms");
    expect(screen.getByTestId("field-hub-name")).toHaveTextContent("Demo Hub");
    expect(screen.getByTestId("field-hub-url")).toHaveTextContent("https://hub.demo-store.example");
    expect(screen.getByTestId("field-license-count")).toHaveTextContent("12 (3 in use)");
    const rows = screen.getAllByTestId("license-row");
    expect(rows).toHaveLength(2);
    expect(rows[0]).toHaveTextContent("Endpoint");
    expect(rows[0]).toHaveTextContent("POS-01, POS-02");
    // A kind from a newer server is shown, not dropped.
    expect(rows[1]).toHaveTextContent("quantum_worker");
    expect(screen.queryByTestId("grace")).toBeNull();
  });

  it("says so when the state file was changed outside the console", () => {
    mockIPC(() => null);
    render(LicensePanel, { view: licensedView({ stateIntegrity: "older_copy" }), onChange: () => {} });
    const banner = screen.getByTestId("state-integrity");
    expect(banner).toHaveAttribute("data-code", "older_copy");
    expect(banner).toHaveTextContent("replaced by an older copy");
  });

  it("Refresh is disabled while in flight and then shows the result", async () => {
    let release: (v: unknown) => void = () => {};
    mockIPC((cmd) => {
      if (cmd === "refresh_license") return new Promise((r) => (release = r));
      return null;
    });
    const onChange = vi.fn();
    render(LicensePanel, { view: licensedView(), onChange });
    const button = screen.getByTestId("refresh");
    await fireEvent.click(button);
    expect(button).toBeDisabled();
    const fresh = licensedView({ lastVerified: new Date().toISOString() });
    release(fresh);
    expect(await screen.findByTestId("refresh-result")).toHaveTextContent("License verified");
    expect(button).toBeEnabled();
    expect(onChange).toHaveBeenCalledWith(fresh);
  });

  it("a failed Refresh shows the offline message", async () => {
    mockIPC((cmd) => {
      if (cmd === "refresh_license") throw { code: "offline", message: "Cannot reach the license server." };
      return null;
    });
    render(LicensePanel, { view: licensedView(), onChange: () => {} });
    await fireEvent.click(screen.getByTestId("refresh"));
    const alert = await screen.findByTestId("error");
    expect(alert).toHaveAttribute("data-code", "offline");
  });

  it("a Refresh that cannot reach the server runs Test connection once by itself", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "refresh_license") throw { code: "timeout", message: "The license server did not answer in time." };
      if (cmd === "test_connection") return connectionReport();
      return null;
    });
    render(LicensePanel, { view: licensedView(), onChange: () => {} });
    expect(calls.filter((c) => c === "test_connection")).toHaveLength(0);
    await fireEvent.click(screen.getByTestId("refresh"));
    expect(await screen.findByTestId("connection-summary")).toHaveTextContent("Connection failed");
    expect(calls.filter((c) => c === "test_connection")).toHaveLength(1);
  });

  it("a Refresh refused for another reason does not test the connection", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "refresh_license") throw { code: "revoked", message: "The server no longer accepts this device." };
      return null;
    });
    render(LicensePanel, { view: licensedView(), onChange: () => {} });
    await fireEvent.click(screen.getByTestId("refresh"));
    await screen.findByTestId("error");
    expect(calls).not.toContain("test_connection");
    expect(screen.getByTestId("test-connection")).toBeEnabled();
  });

  it("background refreshes failing (the grace period runs) test the connection once", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      return cmd === "test_connection" ? connectionReport() : null;
    });
    const view = licensedView({ verification: "grace_period", graceLeftSecs: 3600 });
    const { rerender } = render(LicensePanel, { view, onChange: () => {} });
    await screen.findByTestId("connection-summary");
    // Another failed background refresh: a new view, no new check.
    await rerender({ view: { ...view, graceLeftSecs: 3000 }, onChange: () => {} });
    expect(calls.filter((c) => c === "test_connection")).toHaveLength(1);
  });

  it("counts the grace period down live to last verification + grace", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "Date"] });
    try {
      vi.setSystemTime(new Date("2026-11-22T12:00:00Z"));
      mockIPC(() => null);
      const view = licensedView({
        verification: "grace_period",
        lastVerified: "2026-11-21T12:00:00Z",
        graceEndsAt: "2026-11-24T12:00:00Z",
        graceLeftSecs: 2 * 86400,
        serverUrl: "https://license.example.com",
      });
      render(LicensePanel, { view, onChange: () => {} });
      expect(screen.getByTestId("grace-countdown")).toHaveTextContent("2d 00h 00m 00s");
      expect(screen.getByTestId("grace")).toHaveTextContent("license.example.com, port 443 (HTTPS)");
      await vi.advanceTimersByTimeAsync(61_000);
      expect(screen.getByTestId("grace-countdown")).toHaveTextContent("1d 23h 58m 59s");
    } finally {
      vi.useRealTimers();
    }
  });

  it("says the server's grace length and counts down from Rust's seconds, not from the grace end", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "Date"] });
    try {
      mockIPC(() => null);
      // The webview's clock puts the grace end a week away; Rust's seconds win.
      const graceEndsAt = new Date(Date.now() + 7 * 86400e3).toISOString();
      const view = licensedView({ verification: "grace_period", graceEndsAt, graceLeftSecs: 3600, gracePeriod: "12 hours" });
      render(LicensePanel, { view, onChange: () => {} });
      expect(screen.getByTestId("grace-countdown")).toHaveTextContent("0d 01h 00m 00s");
      expect(screen.getByTestId("grace-period")).toHaveTextContent("12 hours");
      expect(screen.getByTestId("grace")).not.toHaveTextContent("3 days");
      await vi.advanceTimersByTimeAsync(3_601_000);
      expect(screen.getByTestId("grace")).toHaveTextContent("Verification overdue");
    } finally {
      vi.useRealTimers();
    }
  });

  it("badges a package by its status code and shows Rust's label", () => {
    mockIPC(() => null);
    const view = licensedView();
    view.packages = [{ ...view.packages[0], status: "suspended", statusLabel: "Suspended" }];
    render(LicensePanel, { view, onChange: () => {} });
    const badge = screen.getByText("Suspended");
    expect(badge).toHaveClass("bad");
  });

  it("licensed by file, it says so and counts the offline license down, with no grace banner", () => {
    mockIPC(() => null);
    render(LicensePanel, {
      view: licensedView({
        statusLabel: "Licensed (offline)",
        verification: "offline",
        offlineUntil: "2030-01-31T00:00:00Z",
        offlineLeftSecs: 2 * 86400 + 3600,
      }),
      onChange: () => {},
    });
    expect(screen.getByTestId("license-status")).toHaveTextContent("Licensed (offline)");
    expect(screen.getByTestId("offline")).toHaveTextContent("Licensed by file (offline)");
    expect(screen.getByTestId("offline-countdown")).toHaveTextContent(/2\s*d/);
    expect(screen.queryByTestId("grace")).toBeNull();
  });

  it("an offline license run out says the service may stop", () => {
    mockIPC(() => null);
    render(LicensePanel, {
      view: licensedView({ verification: "offline_expired", offlineUntil: "2020-01-01T00:00:00Z", offlineLeftSecs: 0 }),
      onChange: () => {},
    });
    expect(screen.getByTestId("offline")).toHaveTextContent("Offline license expired");
  });

  it("after the grace end it says verification is overdue", () => {
    mockIPC(() => null);
    render(LicensePanel, {
      view: licensedView({ verification: "grace_expired", graceEndsAt: "2020-01-01T00:00:00Z" }),
      onChange: () => {},
    });
    expect(screen.getByTestId("grace")).toHaveTextContent("Verification overdue");
  });

  it("Remove license asks first, and offers Remove anyway when the server is unreachable", async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "remove_license" && !(args as { force: boolean }).force)
        throw { code: "offline", message: "Cannot reach the license server." };
      return null;
    });
    render(LicensePanel, { view: licensedView(), onChange: () => {} });
    await fireEvent.click(screen.getByTestId("remove"));
    expect(calls).toHaveLength(0);
    await fireEvent.click(screen.getByTestId("remove-confirm"));
    await fireEvent.click(await screen.findByTestId("remove-force"));
    await vi.waitFor(() =>
      expect(calls.filter(([c]) => c === "remove_license").map(([, a]) => a)).toEqual([{ force: false }, { force: true }]),
    );
  });
});
