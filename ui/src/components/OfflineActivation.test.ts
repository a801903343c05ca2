import { fireEvent, render, screen } from "@testing-library/svelte";
import { mockIPC } from "@tauri-apps/api/mocks";
import { describe, expect, it, vi } from "vitest";
import OfflineActivation from "./OfflineActivation.svelte";
import { licensedView } from "../test/fixtures";

describe("OfflineActivation", () => {
  it("Save activation request shows the request's text and where it was saved", async () => {
    const calls: Array<[string, unknown]> = [];
    mockIPC((cmd, args) => {
      calls.push([cmd, args]);
      if (cmd === "save_activation_request")
        return {
          text: "eyJhbGciOi.req.sig",
          path: "/home/admin/Downloads/activation-request-abcd1234.txt",
          requestId: "abcd1234",
          qrSvg: '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1v1H0z"/></svg>',
        };
      return null;
    });
    render(OfflineActivation, { serverUrl: "https://licenses.example.com", onChange: () => {} });
    await fireEvent.click(screen.getByTestId("save-activation-request"));
    expect(await screen.findByTestId("activation-request-text")).toHaveValue("eyJhbGciOi.req.sig");
    expect(screen.getByTestId("activation-request-path")).toHaveTextContent("activation-request-abcd1234.txt");
    expect(screen.getByTestId("activation-request-qr").getAttribute("src")).toBe(
      "data:image/svg+xml;charset=utf-8," +
        encodeURIComponent('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0h1v1H0z"/></svg>'),
    );
    expect(calls).toEqual([["save_activation_request", { serverUrl: "https://licenses.example.com" }]]);
  });

  it("Load activation response passes the pasted text and hands the new view on", async () => {
    const view = licensedView({ statusLabel: "Licensed (offline)", verification: "offline" });
    mockIPC((cmd, args) => {
      if (cmd === "load_activation_response") {
        expect(args).toEqual({ text: '{"format":"license-activation-response/1"}' });
        return view;
      }
      return null;
    });
    const onChange = vi.fn();
    render(OfflineActivation, { onChange });
    const load = screen.getByTestId("load-activation-response");
    expect(load).toBeDisabled();
    await fireEvent.input(screen.getByTestId("activation-response-input"), {
      target: { value: '{"format":"license-activation-response/1"}' },
    });
    await fireEvent.click(load);
    expect(await screen.findByTestId("activation-loaded")).toBeInTheDocument();
    expect(onChange).toHaveBeenCalledWith(view);
  });

  it("a refused response says why, with its code, and hands nothing on", async () => {
    mockIPC((cmd) => {
      if (cmd === "load_activation_response")
        throw { code: "offline_file", message: "This activation response was made for another installation. Nothing was changed." };
      return null;
    });
    const onChange = vi.fn();
    render(OfflineActivation, { onChange });
    await fireEvent.input(screen.getByTestId("activation-response-input"), { target: { value: "{}" } });
    await fireEvent.click(screen.getByTestId("load-activation-response"));
    const alert = await screen.findByTestId("offline-error");
    expect(alert).toHaveAttribute("data-code", "offline_file");
    expect(alert).toHaveTextContent("another installation");
    expect(onChange).not.toHaveBeenCalled();
  });

  it("licensed by file, Deactivate asks first, then shows the deactivation file", async () => {
    const calls: string[] = [];
    mockIPC((cmd) => {
      calls.push(cmd);
      if (cmd === "deactivate_offline_license") return { text: "eyJ.deact.sig", path: null, requestId: null, qrSvg: null };
      if (cmd === "license_view") return licensedView({ status: "unlicensed" });
      return null;
    });
    const panel = render(OfflineActivation, { licensedOffline: true, onChange: () => {} });
    await fireEvent.click(screen.getByTestId("deactivate"));
    expect(calls).toEqual([]);
    await fireEvent.click(screen.getByTestId("deactivate-confirm"));
    expect(await screen.findByTestId("deactivation-text")).toHaveValue("eyJ.deact.sig");
    expect(calls).toEqual(["deactivate_offline_license", "license_view"]);
    // The panel gives way to the Not licensed screen, which still shows the file.
    panel.unmount();
    render(OfflineActivation, { onChange: () => {} });
    expect(screen.getByTestId("deactivation-text")).toHaveValue("eyJ.deact.sig");
  });
});
