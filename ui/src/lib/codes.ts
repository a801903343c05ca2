// Every place the UI branches on a code from Rust, as tables keyed by the
// generated unions: a code added on the Rust side fails `npm run check`
// until it has its row here. Components look codes up here and never
// compare them with string literals; labels come from Rust.
import type { ConnectionStepStatus } from "./bindings/ConnectionStepStatus";
import type { ErrorCode } from "./bindings/ErrorCode";
import type { LicenseStatusCode } from "./bindings/LicenseStatusCode";
import type { PackageStatusCode } from "./bindings/PackageStatusCode";
import type { StateIntegrity } from "./bindings/StateIntegrity";
import type { VerificationCode } from "./bindings/VerificationCode";

/** Whether the console holds a license (the panel) or not (acquisition). */
export const hasLicense: Record<LicenseStatusCode, boolean> = {
  unlicensed: false,
  licensed: true,
  requires_renewal: true,
  expired_requires_renewal: true,
  revoked: true,
};

/** The class of the status pill. */
export const statusPillClass: Record<LicenseStatusCode, string> = {
  unlicensed: "status-bad",
  licensed: "status-ok",
  requires_renewal: "status-warn",
  expired_requires_renewal: "status-bad",
  revoked: "status-bad",
};

/** What the panel says about a status beyond its label, and how loudly. */
export const statusNotice: Record<LicenseStatusCode, { alertClass: string; text: string } | null> = {
  unlicensed: null,
  licensed: null,
  requires_renewal: {
    alertClass: "alert warn",
    text: "The license is nearing its renewal date. It must be renewed at the Authorization server.",
  },
  expired_requires_renewal: {
    alertClass: "alert",
    text: "The license has expired. Remove it, then acquire it again from the Authorization server.",
  },
  revoked: {
    alertClass: "alert",
    text: "The Authorization server revoked this license. Remove it, then acquire it again.",
  },
};

/** Verification is failing and the offline grace period runs. */
export const graceRunning: Record<VerificationCode, boolean> = {
  never: false,
  verified: false,
  grace_period: true,
  grace_expired: false,
  offline: false,
  offline_expired: false,
};

/** The offline grace period is over. */
export const graceOver: Record<VerificationCode, boolean> = {
  never: false,
  verified: false,
  grace_period: false,
  grace_expired: true,
  offline: false,
  offline_expired: false,
};

/** The badge class of a license package's status. */
export const packageBadgeClass: Record<PackageStatusCode, string> = {
  active: "ok",
  suspended: "bad",
  revoked: "bad",
};

/** Failures after which Remove anyway is offered: the server could not be reached. */
export const serverUnreachable: Record<ErrorCode, boolean> = {
  offline: true,
  timeout: true,
  tls: true,
  server_error: true,
  protocol: false,
  clock: false,
  denied: false,
  code_expired: false,
  revoked: false,
  invalid_input: false,
  cancelled: false,
  superseded: false,
  no_authorization: false,
  authorization_pending: false,
  not_licensed: false,
  keychain_missing: false,
  keychain_locked: false,
  keychain_unavailable: false,
  keychain_corrupt: false,
  storage: false,
  open_failed: false,
  unsupported: false,
  clipboard: false,
  offline_file: false,
  no_trust_anchor: false,
  licensed_offline: false,
  internal: false,
};

/** Failures that end the authorization in progress: back to Next. */
export const endsAuthorization: Partial<Record<ErrorCode, true>> = {
  code_expired: true,
  denied: true,
};

/** Advice shown under an acquisition failure. */
export const acquisitionHelp: Partial<Record<ErrorCode, string>> = {
  offline: "Check the server URL, and that this computer can reach the server's address and port.",
  timeout: "The server did not answer in time. Try again in a moment.",
  code_expired: "The User Code expired before it was authorized. Choose Next to get a new one.",
  denied: "An administrator denied this request. Ask them, then choose Next to try again.",
};

/** What the panel says when the state file was changed outside the console. */
export const stateIntegrityNotice: Record<StateIntegrity, string | null> = {
  intact: null,
  edited:
    "The console's state file was edited or replaced outside the console. Nothing in it was used: the panel shows what the license server signed. Choose Refresh to verify now.",
  older_copy:
    "The console's state file was replaced by an older copy (a backup or a snapshot). Nothing in it was used: the panel shows what the license server signed. Choose Refresh to verify now.",
  deleted:
    "The console's state file was deleted. The license is kept in the system keychain; choose Refresh to verify it with the license server.",
};

/** A connectivity step's status in words and its badge class: never colour alone. */
export const stepStatus: Record<ConnectionStepStatus, { text: string; badgeClass: string }> = {
  ok: { text: "OK", badgeClass: "ok" },
  warning: { text: "Warning", badgeClass: "warn" },
  failed: { text: "Failed", badgeClass: "bad" },
  skipped: { text: "Skipped", badgeClass: "skip" },
};

/** The alert class of the connectivity check's summary line, by its outcome. */
export const connectionOutcomeAlert: Record<ConnectionStepStatus, string> = {
  ok: "alert ok",
  warning: "alert warn",
  failed: "alert",
  skipped: "alert warn",
};
