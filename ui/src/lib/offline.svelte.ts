import type { OfflineFileView } from "./bindings/OfflineFileView";

/**
 * The deactivation file last made. Deactivating ends the offline license, so
 * the panel that made the file gives way to the Not licensed screen: this
 * outlives both, and the Not licensed screen shows the file until a license
 * is loaded again.
 */
export const offlineFiles = $state<{ deactivation: OfflineFileView | null }>({ deactivation: null });
