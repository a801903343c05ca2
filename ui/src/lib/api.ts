// The only module that calls the Rust side. Components import from here, so
// the command names and payload shapes live in one place. The shapes are
// generated from the Rust DTOs by ts-rs (`cargo test -p license-console`
// writes ./bindings; never edit those by hand).
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";
import type { AppInfo } from "./bindings/AppInfo";
import type { AuthorizationView } from "./bindings/AuthorizationView";
import type { CommandError } from "./bindings/CommandError";
import type { LicenseRow } from "./bindings/LicenseRow";
import type { LicenseView } from "./bindings/LicenseView";
import type { PackageRow } from "./bindings/PackageRow";
import type { Settings } from "./bindings/Settings";
import type { SettingsView } from "./bindings/SettingsView";

export type {
  AppInfo,
  AuthorizationView,
  CommandError,
  LicenseRow,
  LicenseView,
  PackageRow,
  Settings,
  SettingsView,
};

export function isCommandError(e: unknown): e is CommandError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Any failure as a CommandError, so screens have one shape to show. */
export function asCommandError(e: unknown): CommandError {
  if (isCommandError(e)) return e;
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}

export type LicenseStatusCode = LicenseView["status"];
export type VerificationCode = LicenseView["verification"];

export const appInfo = () => invoke<AppInfo>("app_info");
/** Tells the Rust side the panel is on screen (for the cold start figure). */
export const panelPainted = () => invoke<void>("panel_painted").catch(() => undefined);
export const licenseView = () => invoke<LicenseView>("license_view");
export const startAuthorization = (serverUrl: string) =>
  invoke<AuthorizationView>("start_authorization", { serverUrl });
export const completeAuthorization = () => invoke<LicenseView>("complete_authorization");
export const cancelAuthorization = () => invoke<void>("cancel_authorization");
export const openVerificationPage = () => invoke<void>("open_verification_page");
export const refreshLicense = () => invoke<LicenseView>("refresh_license");
export const removeLicense = (force: boolean) => invoke<LicenseView>("remove_license", { force });

export function onLicenseChanged(handler: (view: LicenseView) => void): Promise<UnlistenFn> {
  return listen<LicenseView>("license-changed", (event) => handler(event.payload));
}

export function onAuthorizationFailed(handler: (error: CommandError) => void): Promise<UnlistenFn> {
  return listen<CommandError>("authorization-failed", (event) => handler(event.payload));
}

export const getSettings = () => invoke<SettingsView>("get_settings");
export const saveSettings = (settings: Settings) => invoke<LicenseView>("save_settings", { settings });
