// The shapes of the operator API's answers the console reads (docs/api/operator.md,
// docs/formats.md): only the fields it shows.

export interface Device {
  id: string;
  device_type: string;
  hardware_revision: string;
  site: string;
  connectivity?: string;
  tags: string[];
  installed: Record<string, string>;
  attributes?: Record<string, string>;
  update_state: string;
  enrollment?: "pending" | "rejected";
  enrolled_at?: number;
  enrolled_by?: string;
  decommissioned?: boolean;
  last_seen: number | null;
  next_checkin: number | null;
}

export interface DevicePage {
  devices: Device[];
  matched: number;
  next: string | null;
}

export interface Site {
  name: string;
  time_zone: string;
  maintenance_windows: { days: string; start: string; length: string }[];
}

export interface RolloutSummary {
  id: string;
  name: string;
  artifact: string; // "name@version"
  state: string;
  stage: string | null; // the current stage's name
  targets: number;
  created_at: number;
}

export interface Step {
  at: number;
  event: string;
  state: string;
  message?: string;
}

export interface DeviceDeployment {
  rollout_id: string;
  rollout: RolloutSummary;
  state: string;
  stratum: string;
  error?: string;
  from_version?: string;
  offers: number;
  updated_at: number;
  history: Step[];
}

export interface Artifact {
  name: string;
  version: string;
  device_types: string[];
  hardware_revisions: string[];
  size: number;
  sha256: string;
  signed?: boolean;
}

export interface Counts {
  [state: string]: number;
}

export interface StratumProgress {
  key: string;
  halted: boolean;
  successes: number;
  failures: number;
  devices: number;
  states: Counts;
}

export interface Halt {
  key: string;
  reason: string;
  policy: string;
  halted_at: number;
  unexplained?: boolean;
}

export interface Outcome {
  targets: number;
  updated: number;
  failed: number;
  reverted: number;
  never_offered: number;
  skipped: number;
  silent: number;
  halted: { group: string; reason: string; devices: number; never_offered: number; not_reverted?: number }[];
  never_offered_why?: { reason: string; devices: number }[];
}

export interface Progress {
  devices: number;
  finished: number;
  in_flight: number;
  states: Counts;
  stages: { name: string; devices: number; finished: number; in_flight: number; states: Counts }[];
  strata: StratumProgress[];
  outcome?: Outcome;
  health?: HealthGate[];
  health_waiting?: number;
}

export interface Rollout {
  id: string;
  plan: { name: string; artifact: { name: string; version: string }; stages: { name: string; soak?: string }[] };
  state: string;
  stage: number;
  targets: number;
  created_at: number;
  started_at: number;
  finished_at: number;
  created_by?: string;
  stages: { name: string; started_at: number; settled_at: number; finished_at: number; devices: number }[];
  halted: Halt[];
  progress: Progress | null;
}

export interface RolloutEvent {
  seq: number;
  at: number;
  event: string;
  text: string;
}

export interface PlanPreview {
  targets: number;
  already_current: number;
  excluded_count: number;
  excluded: { device_id: string; reason: string }[];
  stages: { name: string; adds: number; cumulative: number; asked: number; why: string }[];
  strata: { key: string; devices: number }[];
  rollback: {
    switch_back: number;
    download: number;
    not_revertible: number;
    gaps: { ran: string | null; devices: number; examples: string[]; reason: string; missing_artifact: string | null }[];
  };
}

// GET /rollouts/{id}/timeline: counts at each time of `at` (ms since the epoch).
export interface TimelineSeries {
  name: string; // "all", "stage:<name>", "stratum:<key>"
  offered: number[];
  succeeded: number[];
  failed: number[];
  reverted: number[];
}
export interface Timeline {
  at: number[];
  series: TimelineSeries[];
  strata: Record<string, number>;
}

// POST /rollouts/predict: the twin's pre-flight of a plan on the live fleet.
export interface Prediction {
  at: number;
  assumptions: {
    poll_interval: string;
    engine_tick: string;
    horizon: string;
    install_time: string;
    reboot_time: string;
    bandwidth_bps: number;
    defects: string;
    other_rollouts: string;
  };
  fleet: { devices: number; dark: number; unknown_schedule: number; excluded: number };
  report: {
    devices_eligible: number;
    devices_updated: number;
    rollout_state: string;
    time_to_50_percent_s: number | null;
    time_to_95_percent_s: number | null;
    time_to_100_percent_s: number | null;
    stages: { name: string; devices: number; started_at_s: number; finished_at_s: number | null; bound_by?: string }[];
    never_reached?: { device_id: string; reason: string }[];
  };
}

export interface ApiToken {
  id: string;
  name: string;
  role: string;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

export interface AuditEntry {
  index: number;
  at: number;
  actor: string;
  action: string;
  subject: string;
  detail: Record<string, unknown>;
}

export interface FleetSummary {
  at: number;
  devices: number;
  decommissioned: number;
  by_state: Record<string, number>;
  by_enrollment: { accepted: number; pending: number; rejected: number };
  by_device_type: Record<string, number>;
  by_hardware_revision: Record<string, number>;
  by_site: Record<string, number>;
  by_connectivity: Record<string, number>;
  by_installed: Record<string, Record<string, number>>;
  check_ins: { last_hour: number; last_day: number; before: number; never: number; overdue: number };
}

// An alert of the remediation rules (docs/api/operator.md, "Alerts").
export interface Alert {
  id: string;
  device_id: string;
  rule: string;
  condition: string;
  state: "open" | "acknowledged" | "resolved";
  summary: string;
  escalated: boolean;
  escalation: string;
  resolution: string;
  commands: string[];
  opened_at: number;
  updated_at: number;
  acknowledged_at: number | null;
  acknowledged_by: string;
  resolved_at: number | null;
  resolved_by: string;
}

// When a resource runs out, from now (docs/api/operator.md, "Health").
export interface Forecast {
  resource: string;
  metric: string;
  limit: number;
  level_now: number;
  expected_s: number;
  earliest_s: number;
  latest_s: number | null;
  device?: string;
}

export interface DeviceHealth {
  device: string;
  device_type: string;
  status: "healthy" | "degraded" | "critical" | "unknown";
  score: number;
  quiet_s: number | null;
  reasons: { kind: string; severity: "warning" | "critical"; points: number; text: string; alert?: string }[];
  forecasts: Forecast[];
}

export interface FleetHealth {
  devices: number;
  by_status: { healthy: number; degraded: number; critical: number; unknown: number };
  unreadable: number;
  lost: number;
  lost_last_30_days: number;
  loss_rate_per_month: number;
  lost_after: string;
  days: number;
  at_risk_total: number;
  at_risk: DeviceHealth[];
  predicted_total: number;
  predicted_failures: Forecast[];
}

// A rollout's health gate at one group on one metric (docs/gates.md, "Health gates").
export interface HealthGate {
  group: string;
  metric: string;
  measure: string;
  pairs: number;
  worse: number;
  ties: number;
  evidence: number;
  threshold: number;
  halted: boolean;
}
