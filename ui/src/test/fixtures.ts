import type { ConnectionReportView, LicenseView } from "../lib/api";

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
    offlineUntil: null,
    offlineLeftSecs: null,
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

export const connectionRuleText =
  "Component | Port | IP address\nlicenses.example.com | 443 (HTTPS) | 203.0.113.7\nlicenses.example.com | 443 (HTTPS) | 203.0.113.8\n";

/** A Test connection report: one of two addresses is blocked. */
export function connectionReport(overrides: Partial<ConnectionReportView> = {}): ConnectionReportView {
  return {
    serverUrl: "https://licenses.example.com",
    host: "licenses.example.com",
    port: 443,
    scheme: "https",
    outcome: "failed",
    summary: "Connection failed (203.0.113.8:443): ask the network team for a firewall rule.",
    proxy: null,
    steps: [
      {
        kind: "resolve",
        label: "Name resolution",
        target: "licenses.example.com",
        port: "443 (HTTPS)",
        ips: ["203.0.113.7", "203.0.113.8"],
        status: "ok",
        detail: "licenses.example.com resolves to 203.0.113.7, 203.0.113.8.",
        advice: null,
      },
      {
        kind: "connect",
        label: "Connection",
        target: "203.0.113.7:443",
        port: "443 (HTTPS)",
        ips: ["203.0.113.7"],
        status: "ok",
        detail: "Connected in 12 ms.",
        advice: null,
      },
      {
        kind: "connect",
        label: "Connection",
        target: "203.0.113.8:443",
        port: "443 (HTTPS)",
        ips: ["203.0.113.8"],
        status: "failed",
        detail: "No answer within 5 s: a firewall probably drops the connection to 203.0.113.8:443.",
        advice: "Ask the network team for a firewall rule allowing TCP from this computer to 203.0.113.8:443.",
      },
      {
        kind: "tls",
        label: "Secure connection (TLS)",
        target: "licenses.example.com:443",
        port: "443 (HTTPS)",
        ips: [],
        status: "ok",
        detail: "Trusted certificate.",
        advice: null,
      },
      {
        kind: "metadata",
        label: "License server answer",
        target: "https://licenses.example.com/.well-known/oauth-authorization-server",
        port: "443 (HTTPS)",
        ips: [],
        status: "ok",
        detail: "The license server answered.",
        advice: null,
      },
      {
        kind: "clock",
        label: "Clock",
        target: "Date header",
        port: null,
        ips: [],
        status: "skipped",
        detail: "Not measured.",
        advice: null,
      },
    ],
    addresses: ["203.0.113.7", "203.0.113.8"],
    clockOffsetSecs: null,
    tls: null,
    rule: { host: "licenses.example.com", port: 443, ips: ["203.0.113.7", "203.0.113.8"], proxyException: null },
    ruleText: connectionRuleText,
    ...overrides,
  };
}
