// Parameter and multiply-add counts, model summaries.
export * from "./summary";
