export * from "./containers";
export * as init from "./init";
export * from "./layers";
export * from "./module";
export * from "./se";
