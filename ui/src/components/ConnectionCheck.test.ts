import { fireEvent, render, screen, within } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { afterEach, describe, expect, it, vi } from "vitest";
import ConnectionCheck from "./ConnectionCheck.svelte";
import { connectionReport as failedReport, connectionRuleText as ruleText } from "../test/fixtures";

afterEach(() => vi.unstubAllGlobals());

describe("ConnectionCheck", () => {
  it("is busy while the check runs, then shows the summary and a row per step with its status in words", async () => {
    let release: (v: unknown) => void = () => {};
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "test_connection") return new Promise((r) => (release = r));
      return null;
    });
    render(ConnectionCheck, {});
    const button = screen.getByTestId("test-connection");
    expect(button).toHaveTextContent("Test connection");
    await fireEvent.click(button);
    expect(button).toBeDisabled();
    expect(button).toHaveTextContent("Testing connection");
    expect(screen.getByTestId("connection-running")).toBeInTheDocument();
    // Without a URL, the configured server is checked.
    expect(calls).toEqual([["test_connection", { serverUrl: null }]]);

    release(failedReport());
    const summary = await screen.findByTestId("connection-summary");
    expect(summary).toHaveAttribute("data-outcome", "failed");
    expect(summary).toHaveTextContent("Failed. Connection failed (203.0.113.8:443)");
    expect(button).toBeEnabled();
    expect(screen.queryByTestId("connection-running")).toBeNull();

    const table = screen.getByTestId("connection-table");
    const headers = within(table)
      .getAllByRole("columnheader")
      .map((h) => h.textContent);
    expect(headers).toEqual(["Component", "Port", "IP address", "Status"]);
    const rows = screen.getAllByTestId("connection-step");
    expect(rows).toHaveLength(6);
    // Status as text, not colour alone.
    expect(rows.map((r) => within(r).getByTestId("step-status").textContent)).toEqual([
      "OK",
      "OK",
      "Failed",
      "OK",
      "OK",
      "Skipped",
    ]);
    const failed = rows[2];
    expect(within(failed).getByRole("rowheader")).toHaveTextContent("Connection");
    expect(failed).toHaveTextContent("443 (HTTPS)");
    expect(failed).toHaveTextContent("203.0.113.8");
    expect(failed).toHaveTextContent("No answer within 5 s");
    expect(failed).toHaveTextContent("What to do: Ask the network team");
    // Every resolved address, one per line.
    expect(within(rows[0]).getAllByText(/^203\.0\.113\.\d$/).map((e) => e.textContent)).toEqual([
      "203.0.113.7",
      "203.0.113.8",
    ]);
    expect(rows[5]).toHaveTextContent("—");
    expect(screen.getByTestId("connection-rule").textContent).toBe(ruleText);
    expect(screen.queryByTestId("tls-inspection")).toBeNull();
  });

  it("tests the URL as typed when given one", async () => {
    const calls: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "test_connection") calls.push(args);
      return failedReport();
    });
    render(ConnectionCheck, { serverUrl: "licenses.example.com:8443" });
    await fireEvent.click(screen.getByTestId("test-connection"));
    await screen.findByTestId("connection-summary");
    expect(calls).toEqual([{ serverUrl: "licenses.example.com:8443" }]);
  });

  it("Copy to clipboard copies the rule text exactly and says Copied", async () => {
    const writeText = vi.fn().mockResolvedValue(undefined);
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText } });
    mockIPC(() => failedReport());
    render(ConnectionCheck, {});
    await fireEvent.click(screen.getByTestId("test-connection"));
    const copy = await screen.findByTestId("copy-rule");
    expect(copy).toHaveTextContent("Copy to clipboard");
    await fireEvent.click(copy);
    expect(writeText).toHaveBeenCalledExactlyOnceWith(ruleText);
    await vi.waitFor(() => expect(copy).toHaveTextContent("Copied"));
  });

  it("a clipboard that refuses says to copy by hand", async () => {
    vi.stubGlobal("navigator", { ...navigator, clipboard: { writeText: vi.fn().mockRejectedValue(new Error("denied")) } });
    mockIPC(() => failedReport());
    render(ConnectionCheck, {});
    await fireEvent.click(screen.getByTestId("test-connection"));
    await fireEvent.click(await screen.findByTestId("copy-rule"));
    const alert = await screen.findByTestId("connection-error");
    expect(alert).toHaveAttribute("data-code", "clipboard");
    expect(screen.getByTestId("copy-rule")).toHaveTextContent("Copy to clipboard");
  });

  it("auto-run checks once by itself, and again only after the trouble ended and came back", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      return failedReport();
    });
    const { rerender } = render(ConnectionCheck, { autoRun: true });
    expect(await screen.findByTestId("connection-summary")).toBeInTheDocument();
    expect(calls).toEqual(["test_connection"]);
    await rerender({ autoRun: true });
    expect(calls).toEqual(["test_connection"]);
    await rerender({ autoRun: false });
    await rerender({ autoRun: true });
    await vi.waitFor(() => expect(calls).toEqual(["test_connection", "test_connection"]));
  });

  it("without auto-run nothing is checked until asked", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      return failedReport();
    });
    render(ConnectionCheck, {});
    await new Promise((r) => setTimeout(r, 20));
    expect(calls).toEqual([]);
    expect(screen.queryByTestId("connection-table")).toBeNull();
  });

  it("shows the TLS-inspection advice with the CA to add", async () => {
    mockIPC(() =>
      failedReport({
        tls: {
          subject: "CN=licenses.example.com",
          issuer: "CN=Corp Inspection CA",
          notAfter: "2031-01-01T00:00:00Z",
          chainLength: 2,
          trusted: false,
          probableInspection: true,
          inspectionAdvice: "Start the console with LICENSE_CONSOLE_EXTRA_CA=/path/to/that-ca.pem.",
        },
      }),
    );
    render(ConnectionCheck, {});
    await fireEvent.click(screen.getByTestId("test-connection"));
    const note = await screen.findByTestId("tls-inspection");
    expect(note).toHaveTextContent("Probable TLS inspection");
    expect(note).toHaveTextContent("CN=Corp Inspection CA");
    expect(note).toHaveTextContent("LICENSE_CONSOLE_EXTRA_CA=/path/to/that-ca.pem");
  });

  it("a refusal from Rust is shown by its message, with its code", async () => {
    mockIPC(() => {
      throw { code: "invalid_input", message: "Enter the license server URL." };
    });
    render(ConnectionCheck, { serverUrl: "" });
    await fireEvent.click(screen.getByTestId("test-connection"));
    const alert = await screen.findByTestId("connection-error");
    expect(alert).toHaveAttribute("data-code", "invalid_input");
    expect(alert).toHaveTextContent("Enter the license server URL.");
    expect(screen.queryByTestId("connection-table")).toBeNull();
  });
});
