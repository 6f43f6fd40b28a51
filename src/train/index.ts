// Training: optimizers, averaging, clipping and learning-rate schedules.
export * from "./adam";
export * from "./clip";
export * from "./ema";
export * from "./lookahead";
export * from "./optim";
export * from "./schedule";
export * from "./sgd";
