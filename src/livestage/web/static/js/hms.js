// The 100ms browser SDK, loaded from the configured URL (LIVESTAGE_HMS_SDK_URL).
export async function connect(sdkUrl) {
  const sdk = await import(sdkUrl);
  const hms = new sdk.HMSReactiveStore();
  hms.triggerOnSubscribe();
  return { sdk, store: hms.getStore(), actions: hms.getActions() };
}

export async function tokenFor(hms, join) {
  if (join.kind === "token") return join.token;
  return hms.actions.getAuthTokenByRoomCode(
    { roomCode: join.room_code, userId: join.user_id },
    { endpoint: join.token_endpoint },
  );
}
