// The only module that calls the Rust side. Components import from here, so
// the command names and payload shapes live in one place. The shapes and the
// command list are generated from Rust (`cargo test -p license-console`
// writes ./bindings; never edit those by hand).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AppInfo } from "./bindings/AppInfo";
import type { AuthorizationView } from "./bindings/AuthorizationView";
import type { CommandError } from "./bindings/CommandError";
import type { CommandName, Commands } from "./bindings/Commands";
import type { ConnectionReportView } from "./bindings/ConnectionReportView";
import type { ConnectionStepRow } from "./bindings/ConnectionStepRow";
import type { ConnectionStepStatus } from "./bindings/ConnectionStepStatus";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { LicenseRow } from "./bindings/LicenseRow";
import type { LicenseStatusCode } from "./bindings/LicenseStatusCode";
import type { LicenseView } from "./bindings/LicenseView";
import type { PackageRow } from "./bindings/PackageRow";
import type { PackageStatusCode } from "./bindings/PackageStatusCode";
import type { Settings } from "./bindings/Settings";
import type { SettingsView } from "./bindings/SettingsView";
import type { VerificationCode } from "./bindings/VerificationCode";

export type {
  AppInfo,
  AuthorizationView,
  CommandError,
  ConnectionReportView,
  ConnectionStepRow,
  ConnectionStepStatus,
  ErrorCode,
  LicenseRow,
  LicenseStatusCode,
  LicenseView,
  PackageRow,
  PackageStatusCode,
  Settings,
  SettingsView,
  VerificationCode,
};

export function isCommandError(e: unknown): e is CommandError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Any failure as a CommandError, so screens have one shape to show. */
export function asCommandError(e: unknown): CommandError {
  if (isCommandError(e)) return e;
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}

/** Calls `command` with its arguments as the generated list types them. */
function call<C extends CommandName>(
  command: C,
  ...args: Commands[C]["args"] extends Record<string, never> ? [] : [Commands[C]["args"]]
): Promise<Commands[C]["answer"]> {
  return invoke<Commands[C]["answer"]>(command, args[0]);
}

export const appInfo = () => call("app_info");
/** Tells the Rust side the panel is on screen (for the cold start figure; debug and perf-probe builds). */
export const panelPainted = () => call("panel_painted").catch(() => undefined);
export const licenseView = () => call("license_view");
export const startAuthorization = (serverUrl: string) => call("start_authorization", { serverUrl });
export const completeAuthorization = () => call("complete_authorization");
export const cancelAuthorization = () => call("cancel_authorization");
export const openVerificationPage = () => call("open_verification_page");
export const refreshLicense = () => call("refresh_license");
export const removeLicense = (force: boolean) => call("remove_license", { force });
export const getSettings = () => call("get_settings");
export const saveSettings = (settings: Settings) => call("save_settings", { settings });
/** Test connection: to `serverUrl` as typed, or (null) to the configured server. */
export const testConnection = (serverUrl: string | null = null) => call("test_connection", { serverUrl });
/** Save activation request: for `serverUrl` as typed, or (null) the configured server. */
export const saveActivationRequest = (serverUrl: string | null = null) => call("save_activation_request", { serverUrl });
export const loadActivationResponse = (text: string) => call("load_activation_response", { text });
export const deactivateOfflineLicense = () => call("deactivate_offline_license");

export function onLicenseChanged(handler: (view: LicenseView) => void): Promise<UnlistenFn> {
  return listen<LicenseView>("license-changed", (event) => handler(event.payload));
}

export function onAuthorizationFailed(handler: (error: CommandError) => void): Promise<UnlistenFn> {
  return listen<CommandError>("authorization-failed", (event) => handler(event.payload));
}

/** The authorization in progress is still waiting; its validity in words changed. */
export function onAuthorizationWaiting(handler: (view: AuthorizationView) => void): Promise<UnlistenFn> {
  return listen<AuthorizationView>("authorization-waiting", (event) => handler(event.payload));
}
