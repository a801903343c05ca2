// The only module that calls the Rust side. Components import from here, so
// the command names and payload shapes live in one place. The shapes mirror
// the DTOs in src-tauri/src/view.rs and src-tauri/src/licensing.rs.
import { invoke } from "@tauri-apps/api/core";
import { listen, type UnlistenFn } from "@tauri-apps/api/event";

export interface AppInfo {
  name: string;
  version: string;
}

/** Error shape every console command returns: branch on `code`, show `message`. */
export interface CommandError {
  code: string;
  message: string;
}

export function isCommandError(e: unknown): e is CommandError {
  return typeof e === "object" && e !== null && "code" in e && "message" in e;
}

/** Any failure as a CommandError, so screens have one shape to show. */
export function asCommandError(e: unknown): CommandError {
  if (isCommandError(e)) return e;
  return { code: "internal", message: e instanceof Error ? e.message : String(e) };
}

export type LicenseStatusCode =
  | "unlicensed"
  | "licensed"
  | "requires_renewal"
  | "expired_requires_renewal"
  | "revoked";

export type VerificationCode = "never" | "verified" | "grace_period" | "grace_expired";

export interface LicenseRow {
  kind: string;
  label: string;
  total: number;
  used: number;
  assignedTo: string[];
}

export interface PackageRow {
  id: string;
  name: string;
  status: string;
  verified: boolean;
  lastVerified: string | null;
  validFrom: string;
  validUntil: string;
  licenses: LicenseRow[];
}

export interface LicenseView {
  status: LicenseStatusCode;
  statusLabel: string;
  verification: VerificationCode;
  serverUrl: string | null;
  serverId: string | null;
  organization: string | null;
  renewalDate: string | null;
  validFrom: string | null;
  validUntil: string | null;
  features: string[];
  hubServerName: string | null;
  hubServerUrl: string | null;
  tokenExpiresAt: string | null;
  tokenWarning: boolean;
  tokenExpired: boolean;
  lastVerified: string | null;
  lastFailure: string | null;
  graceEndsAt: string | null;
  graceLeftSecs: number | null;
  nextRefreshAt: string | null;
  clockRolledBackSecs: number | null;
  licenseCount: number;
  usedCount: number;
  packages: PackageRow[];
  now: string;
}

export interface AuthorizationView {
  userCode: string;
  verificationUri: string;
  verificationUriComplete: string | null;
  expiresAt: string;
  serverUrl: string;
}

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

export interface Settings {
  refreshIntervalHours: number | null;
  tokenWarningHours: number[] | null;
  startAtLogin: boolean;
}

export interface SettingsView {
  settings: Settings;
  serverUrl: string | null;
  policyRefreshHours: number;
  minRefreshHours: number;
  policyWarningHours: number[];
  autostartFile: string | null;
}

export const getSettings = () => invoke<SettingsView>("get_settings");
export const saveSettings = (settings: Settings) => invoke<LicenseView>("save_settings", { settings });
