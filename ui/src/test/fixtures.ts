import type { LicenseView } from "../lib/api";

export function unlicensedView(overrides: Partial<LicenseView> = {}): LicenseView {
  return {
    status: "unlicensed",
    statusLabel: "Not licensed",
    verification: "never",
    serverUrl: "http://127.0.0.1:8300",
    serverId: null,
    organization: null,
    renewalDate: null,
    validFrom: null,
    validUntil: null,
    features: [],
    hubServerName: null,
    hubServerUrl: null,
    tokenExpiresAt: null,
    tokenWarning: false,
    tokenExpired: false,
    lastVerified: null,
    lastFailure: null,
    graceEndsAt: null,
    graceLeftSecs: null,
    gracePeriod: "3 days",
    nextRefreshAt: null,
    clockRolledBackSecs: null,
    stateIntegrity: "intact",
    licenseCount: 0,
    usedCount: 0,
    packages: [],
    now: new Date().toISOString(),
    ...overrides,
  };
}

export function licensedView(overrides: Partial<LicenseView> = {}): LicenseView {
  const now = Date.now();
  return unlicensedView({
    status: "licensed",
    statusLabel: "Licensed",
    verification: "verified",
    serverId: "SRV-7QK2M",
    organization: "Demo Store",
    renewalDate: new Date(now + 200 * 86400e3).toISOString(),
    validFrom: new Date(now - 30 * 86400e3).toISOString(),
    validUntil: new Date(now + 335 * 86400e3).toISOString(),
    features: ["xms"],
    hubServerName: "Demo Hub",
    hubServerUrl: "https://hub.demo-store.example",
    tokenExpiresAt: new Date(now + 3 * 86400e3).toISOString(),
    lastVerified: new Date(now - 60e3).toISOString(),
    licenseCount: 12,
    usedCount: 3,
    packages: [
      {
        id: "pkg-1",
        name: "Backup Essentials",
        status: "active",
        statusLabel: "Active",
        verified: true,
        lastVerified: new Date(now - 60e3).toISOString(),
        validFrom: new Date(now - 30 * 86400e3).toISOString(),
        validUntil: new Date(now + 335 * 86400e3).toISOString(),
        licenses: [
          { kind: "endpoint", label: "Endpoint", total: 10, used: 2, assignedTo: ["POS-01", "POS-02"] },
          { kind: "quantum_worker", label: "quantum_worker", total: 2, used: 1, assignedTo: ["QW-1"] },
        ],
      },
    ],
    ...overrides,
  });
}
