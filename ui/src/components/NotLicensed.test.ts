import { fireEvent, render, screen } from "@testing-library/svelte";
import { emit } from "@tauri-apps/api/event";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it, vi } from "vitest";
import NotLicensed from "./NotLicensed.svelte";
import { connectionReport, licensedView } from "../test/fixtures";

const auth = {
  userCode: "BCDF-GHJK",
  verificationUri: "http://127.0.0.1:8300/device",
  verificationUriComplete: "http://127.0.0.1:8300/device?user_code=BCDFGHJK",
  expiresAt: new Date(Date.now() + 15 * 60e3).toISOString(),
  validFor: "15 minutes",
  serverUrl: "http://127.0.0.1:8300",
};

describe("NotLicensed", () => {
  it("Next sends the server URL and shows the User Code with its validity", async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "start_authorization") return auth;
      return null;
    }, { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:8300", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    expect(await screen.findByTestId("user-code")).toHaveTextContent("BCDF-GHJK");
    expect(calls.find(([c]) => c === "start_authorization")?.[1]).toEqual({ serverUrl: "http://127.0.0.1:8300" });
    expect(screen.getByTestId("code-validity")).toHaveTextContent(/1[45] minutes/);
    expect(screen.getByTestId("verification-uri")).toHaveTextContent("http://127.0.0.1:8300/device");
  });

  it("shows the code's validity in the words Rust sends as the wait goes on", async () => {
    mockIPC((cmd) => (cmd === "start_authorization" ? auth : null), { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:8300", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    expect(await screen.findByTestId("code-validity")).toHaveTextContent("15 minutes");
    await emit("authorization-waiting", { ...auth, validFor: "9 minutes" });
    await vi.waitFor(() => expect(screen.getByTestId("code-validity")).toHaveTextContent("9 minutes"));
    await emit("authorization-waiting", { ...auth, userCode: "ZZZZ-ZZZZ", validFor: "1 minute" });
    expect(screen.getByTestId("code-validity")).toHaveTextContent("9 minutes");
  });

  it("an unreachable server gets a clear offline message and advice", async () => {
    mockIPC((cmd) => {
      if (cmd === "start_authorization") throw { code: "offline", message: "Cannot reach the license server." };
      return null;
    }, { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:9", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    const alert = await screen.findByTestId("error");
    expect(alert).toHaveAttribute("data-code", "offline");
    expect(alert).toHaveTextContent("Cannot reach the license server.");
    expect(alert).toHaveTextContent("address and port");
    expect(screen.queryByTestId("user-code")).toBeNull();
  });

  it("Test connection checks the URL as typed, before anything is saved", async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      return cmd === "test_connection" ? connectionReport() : null;
    }, { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "", onLicensed: () => {} });
    await fireEvent.input(screen.getByTestId("server-url"), { target: { value: "https://licenses.example.com" } });
    await fireEvent.click(screen.getByTestId("test-connection"));
    expect(await screen.findAllByTestId("connection-step")).toHaveLength(6);
    expect(calls.filter(([c]) => c === "test_connection").map(([, a]) => a)).toEqual([
      { serverUrl: "https://licenses.example.com" },
    ]);
    expect(calls.map(([c]) => c)).not.toContain("start_authorization");
  });

  it("Next that cannot reach the server tests the connection by itself", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "start_authorization") throw { code: "offline", message: "Cannot reach the license server." };
      return cmd === "test_connection" ? connectionReport() : null;
    }, { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "https://licenses.example.com", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    expect(await screen.findByTestId("connection-summary")).toHaveTextContent("Connection failed");
    expect(calls.filter((c) => c === "test_connection")).toHaveLength(1);
  });

  it("Complete Authorization before the admin approved says so; after, hands over the license", async () => {
    let approved = false;
    mockIPC((cmd) => {
      if (cmd === "start_authorization") return auth;
      if (cmd === "complete_authorization") {
        if (!approved) throw { code: "authorization_pending", message: "This device is not authorized yet." };
        return licensedView();
      }
      return null;
    }, { shouldMockEvents: true });
    const onLicensed = vi.fn();
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:8300", onLicensed });
    await fireEvent.click(screen.getByTestId("next"));
    await fireEvent.click(await screen.findByTestId("complete"));
    expect(await screen.findByTestId("error")).toHaveTextContent("not authorized yet");
    expect(onLicensed).not.toHaveBeenCalled();
    approved = true;
    await fireEvent.click(screen.getByTestId("complete"));
    await vi.waitFor(() => expect(onLicensed).toHaveBeenCalledOnce());
  });

  it("a code that expires while waiting returns to the start with advice", async () => {
    mockIPC((cmd) => (cmd === "start_authorization" ? auth : null), { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:8300", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    await screen.findByTestId("user-code");
    await emit("authorization-failed", { code: "code_expired", message: "The User Code expired." });
    const alert = await screen.findByTestId("error");
    expect(alert).toHaveTextContent("Choose Next to get a new one");
    expect(screen.queryByTestId("user-code")).toBeNull();
    expect(screen.getByTestId("next")).toBeEnabled();
  });

  it("Cancel stops waiting and tells the Rust side", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      return cmd === "start_authorization" ? auth : null;
    }, { shouldMockEvents: true });
    render(NotLicensed, { initialServerUrl: "http://127.0.0.1:8300", onLicensed: () => {} });
    await fireEvent.click(screen.getByTestId("next"));
    await fireEvent.click(await screen.findByTestId("cancel"));
    await vi.waitFor(() => expect(calls).toContain("cancel_authorization"));
    expect(await screen.findByTestId("next")).toBeInTheDocument();
  });
});
