// Parameter and multiply-add counts, model summaries, plots (Pareto fronts, scatter as SVG/PNG).
export * from "./plot";
export * from "./summary";
