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
