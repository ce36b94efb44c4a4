export { default, default as RetrainModel } from './RetrainModel.jsx';
export { default as ForecastView, ForecastChart, InventoryMetrics, WarningsList, chartRows } from './ForecastView.jsx';
export { default as AccuracyPanel } from './AccuracyPanel.jsx';
export { default as SimulationPanel } from './SimulationPanel.jsx';
export { default as PlanTable } from './PlanTable.jsx';
export { ErrorPanel, ProgressBar } from './parts.jsx';
export { ApiError, SSEParser, STAGES, STAGE_LABELS, createClient, describeError, errorFromResponse } from './api.js';
