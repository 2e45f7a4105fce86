//! What every EWS response message carries: its class, its response code, an optional text and
//! machine-readable extras (`MessageXml`), including the throttling back-off.
//! <https://learn.microsoft.com/en-us/exchange/client-developer/web-service-reference/responsecode>

use super::Error;
use super::xml::{Element, Ns, XmlReader};
use serde::Serialize;
use std::time::Duration;

/// `ResponseClass`: `Success`, `Warning` or `Error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ResponseClass {
    Success,
    Warning,
    Error,
}

impl ResponseClass {
    fn parse(s: &str) -> Option<Self> {
        match s.trim() {
            "Success" => Some(Self::Success),
            "Warning" => Some(Self::Warning),
            "Error" => Some(Self::Error),
            _ => None,
        }
    }
}

macro_rules! response_codes {
    ($($code:ident),* $(,)?) => {
        /// Every `ResponseCodeType` value of the EWS schema (messages.xsd), plus `Other` for codes
        /// a newer server may send. Variant names are the wire names.
        #[allow(non_camel_case_types, clippy::enum_variant_names)]
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum ResponseCode {
            $($code,)*
            /// A code this build does not know; kept as sent.
            Other(String),
        }

        impl ResponseCode {
            /// Every code the schema defines, in schema order.
            pub const ALL: &'static [ResponseCode] = &[$(ResponseCode::$code,)*];

            /// The wire name.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$code => stringify!($code),)*
                    Self::Other(s) => s,
                }
            }

            /// Reads a wire name; unknown names become [`ResponseCode::Other`].
            pub fn parse(s: &str) -> Self {
                let s = s.trim();
                match s {
                    $(stringify!($code) => Self::$code,)*
                    _ => Self::Other(s.to_owned()),
                }
            }
        }
    };
}

// The list is the schema's enumeration, in its order; a test compares it with
// shared/ews-reference/xsd/messages.xsd when that is present.
response_codes! {
    NoError, ErrorAccessDenied, ErrorAccessModeSpecified, ErrorAccountDisabled,
    ErrorAddDelegatesFailed, ErrorAddressSpaceNotFound, ErrorADOperation, ErrorADSessionFilter,
    ErrorADUnavailable, ErrorAutoDiscoverFailed, ErrorAffectedTaskOccurrencesRequired, ErrorAttachmentNestLevelLimitExceeded,
    ErrorAttachmentSizeLimitExceeded, ErrorArchiveFolderPathCreation, ErrorArchiveMailboxNotEnabled, ErrorArchiveMailboxServiceDiscoveryFailed,
    ErrorAvailabilityConfigNotFound, ErrorBatchProcessingStopped, ErrorCalendarCannotMoveOrCopyOccurrence, ErrorCalendarCannotUpdateDeletedItem,
    ErrorCalendarCannotUseIdForOccurrenceId, ErrorCalendarCannotUseIdForRecurringMasterId, ErrorCalendarDurationIsTooLong, ErrorCalendarEndDateIsEarlierThanStartDate,
    ErrorCalendarFolderIsInvalidForCalendarView, ErrorCalendarInvalidAttributeValue, ErrorCalendarInvalidDayForTimeChangePattern, ErrorCalendarInvalidDayForWeeklyRecurrence,
    ErrorCalendarInvalidPropertyState, ErrorCalendarInvalidPropertyValue, ErrorCalendarInvalidRecurrence, ErrorCalendarInvalidTimeZone,
    ErrorCalendarIsCancelledForAccept, ErrorCalendarIsCancelledForDecline, ErrorCalendarIsCancelledForRemove, ErrorCalendarIsCancelledForTentative,
    ErrorCalendarIsDelegatedForAccept, ErrorCalendarIsDelegatedForDecline, ErrorCalendarIsDelegatedForRemove, ErrorCalendarIsDelegatedForTentative,
    ErrorCalendarIsNotOrganizer, ErrorCalendarIsOrganizerForAccept, ErrorCalendarIsOrganizerForDecline, ErrorCalendarIsOrganizerForRemove,
    ErrorCalendarIsOrganizerForTentative, ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange, ErrorCalendarOccurrenceIsDeletedFromRecurrence, ErrorCalendarOutOfRange,
    ErrorCalendarMeetingRequestIsOutOfDate, ErrorCalendarViewRangeTooBig, ErrorCallerIsInvalidADAccount, ErrorCannotAccessDeletedPublicFolder,
    ErrorCannotArchiveCalendarContactTaskFolderException, ErrorCannotArchiveItemsInPublicFolders, ErrorCannotArchiveItemsInArchiveMailbox, ErrorCannotCreateCalendarItemInNonCalendarFolder,
    ErrorCannotCreateContactInNonContactFolder, ErrorCannotCreatePostItemInNonMailFolder, ErrorCannotCreateTaskInNonTaskFolder, ErrorCannotDeleteObject,
    ErrorCannotDisableMandatoryExtension, ErrorCannotFindUser, ErrorCannotGetSourceFolderPath, ErrorCannotGetExternalEcpUrl,
    ErrorCannotOpenFileAttachment, ErrorCannotDeleteTaskOccurrence, ErrorCannotEmptyFolder, ErrorCannotSetCalendarPermissionOnNonCalendarFolder,
    ErrorCannotSetNonCalendarPermissionOnCalendarFolder, ErrorCannotSetPermissionUnknownEntries, ErrorCannotSpecifySearchFolderAsSourceFolder, ErrorCannotUseFolderIdForItemId,
    ErrorCannotUseItemIdForFolderId, ErrorChangeKeyRequired, ErrorChangeKeyRequiredForWriteOperations, ErrorClientDisconnected,
    ErrorClientIntentInvalidStateDefinition, ErrorClientIntentNotFound, ErrorConnectionFailed, ErrorContainsFilterWrongType,
    ErrorContentConversionFailed, ErrorContentIndexingNotEnabled, ErrorCorruptData, ErrorCreateItemAccessDenied,
    ErrorCreateManagedFolderPartialCompletion, ErrorCreateSubfolderAccessDenied, ErrorCrossMailboxMoveCopy, ErrorCrossSiteRequest,
    ErrorDataSizeLimitExceeded, ErrorDataSourceOperation, ErrorDelegateAlreadyExists, ErrorDelegateCannotAddOwner,
    ErrorDelegateMissingConfiguration, ErrorDelegateNoUser, ErrorDelegateValidationFailed, ErrorDeleteDistinguishedFolder,
    ErrorDeleteItemsFailed, ErrorDeleteUnifiedMessagingPromptFailed, ErrorDistinguishedUserNotSupported, ErrorDistributionListMemberNotExist,
    ErrorDuplicateInputFolderNames, ErrorDuplicateUserIdsSpecified, ErrorEmailAddressMismatch, ErrorEventNotFound,
    ErrorExceededConnectionCount, ErrorExceededSubscriptionCount, ErrorExceededFindCountLimit, ErrorExpiredSubscription,
    ErrorExtensionNotFound, ErrorFolderCorrupt, ErrorFolderNotFound, ErrorFolderPropertRequestFailed,
    ErrorFolderSave, ErrorFolderSaveFailed, ErrorFolderSavePropertyError, ErrorFolderExists,
    ErrorFreeBusyGenerationFailed, ErrorGetServerSecurityDescriptorFailed, ErrorImContactLimitReached, ErrorImGroupDisplayNameAlreadyExists,
    ErrorImGroupLimitReached, ErrorImpersonateUserDenied, ErrorImpersonationDenied, ErrorImpersonationFailed,
    ErrorIncorrectSchemaVersion, ErrorIncorrectUpdatePropertyCount, ErrorIndividualMailboxLimitReached, ErrorInsufficientResources,
    ErrorInternalServerError, ErrorInternalServerTransientError, ErrorInvalidAccessLevel, ErrorInvalidArgument,
    ErrorInvalidAttachmentId, ErrorInvalidAttachmentSubfilter, ErrorInvalidAttachmentSubfilterTextFilter, ErrorInvalidAuthorizationContext,
    ErrorInvalidChangeKey, ErrorInvalidClientSecurityContext, ErrorInvalidCompleteDate, ErrorInvalidContactEmailAddress,
    ErrorInvalidContactEmailIndex, ErrorInvalidCrossForestCredentials, ErrorInvalidDelegatePermission, ErrorInvalidDelegateUserId,
    ErrorInvalidExcludesRestriction, ErrorInvalidExpressionTypeForSubFilter, ErrorInvalidExtendedProperty, ErrorInvalidExtendedPropertyValue,
    ErrorInvalidFolderId, ErrorInvalidFolderTypeForOperation, ErrorInvalidFractionalPagingParameters, ErrorInvalidFreeBusyViewType,
    ErrorInvalidId, ErrorInvalidIdEmpty, ErrorInvalidIdMalformed, ErrorInvalidIdMalformedEwsLegacyIdFormat,
    ErrorInvalidIdMonikerTooLong, ErrorInvalidIdNotAnItemAttachmentId, ErrorInvalidIdReturnedByResolveNames, ErrorInvalidIdStoreObjectIdTooLong,
    ErrorInvalidIdTooManyAttachmentLevels, ErrorInvalidIdXml, ErrorInvalidImContactId, ErrorInvalidImDistributionGroupSmtpAddress,
    ErrorInvalidImGroupId, ErrorInvalidIndexedPagingParameters, ErrorInvalidInternetHeaderChildNodes, ErrorInvalidItemForOperationArchiveItem,
    ErrorInvalidItemForOperationCreateItemAttachment, ErrorInvalidItemForOperationCreateItem, ErrorInvalidItemForOperationAcceptItem, ErrorInvalidItemForOperationDeclineItem,
    ErrorInvalidItemForOperationCancelItem, ErrorInvalidItemForOperationExpandDL, ErrorInvalidItemForOperationRemoveItem, ErrorInvalidItemForOperationSendItem,
    ErrorInvalidItemForOperationTentative, ErrorInvalidLogonType, ErrorInvalidLikeRequest, ErrorInvalidMailbox,
    ErrorInvalidManagedFolderProperty, ErrorInvalidManagedFolderQuota, ErrorInvalidManagedFolderSize, ErrorInvalidMergedFreeBusyInterval,
    ErrorInvalidNameForNameResolution, ErrorInvalidOperation, ErrorInvalidNetworkServiceContext, ErrorInvalidOofParameter,
    ErrorInvalidPagingMaxRows, ErrorInvalidParentFolder, ErrorInvalidPercentCompleteValue, ErrorInvalidPermissionSettings,
    ErrorInvalidPhoneCallId, ErrorInvalidPhoneNumber, ErrorInvalidUserInfo, ErrorInvalidPropertyAppend,
    ErrorInvalidPropertyDelete, ErrorInvalidPropertyForExists, ErrorInvalidPropertyForOperation, ErrorInvalidPropertyRequest,
    ErrorInvalidPropertySet, ErrorInvalidPropertyUpdateSentMessage, ErrorInvalidProxySecurityContext, ErrorInvalidPullSubscriptionId,
    ErrorInvalidPushSubscriptionUrl, ErrorInvalidRecipients, ErrorInvalidRecipientSubfilter, ErrorInvalidRecipientSubfilterComparison,
    ErrorInvalidRecipientSubfilterOrder, ErrorInvalidRecipientSubfilterTextFilter, ErrorInvalidReferenceItem, ErrorInvalidRequest,
    ErrorInvalidRestriction, ErrorInvalidRetentionTagTypeMismatch, ErrorInvalidRetentionTagInvisible, ErrorInvalidRetentionTagInheritance,
    ErrorInvalidRetentionTagIdGuid, ErrorInvalidRoutingType, ErrorInvalidScheduledOofDuration, ErrorInvalidSchemaVersionForMailboxVersion,
    ErrorInvalidSecurityDescriptor, ErrorInvalidSendItemSaveSettings, ErrorInvalidSerializedAccessToken, ErrorInvalidServerVersion,
    ErrorInvalidSid, ErrorInvalidSIPUri, ErrorInvalidSmtpAddress, ErrorInvalidSubfilterType,
    ErrorInvalidSubfilterTypeNotAttendeeType, ErrorInvalidSubfilterTypeNotRecipientType, ErrorInvalidSubscription, ErrorInvalidSubscriptionRequest,
    ErrorInvalidSyncStateData, ErrorInvalidTimeInterval, ErrorInvalidUserOofSettings, ErrorInvalidUserPrincipalName,
    ErrorInvalidUserSid, ErrorInvalidUserSidMissingUPN, ErrorInvalidValueForProperty, ErrorInvalidWatermark,
    ErrorIPGatewayNotFound, ErrorIrresolvableConflict, ErrorItemCorrupt, ErrorItemNotFound,
    ErrorItemPropertyRequestFailed, ErrorItemSave, ErrorItemSavePropertyError, ErrorLegacyMailboxFreeBusyViewTypeNotMerged,
    ErrorLocalServerObjectNotFound, ErrorLogonAsNetworkServiceFailed, ErrorMailboxConfiguration, ErrorMailboxDataArrayEmpty,
    ErrorMailboxDataArrayTooBig, ErrorMailboxHoldNotFound, ErrorMailboxLogonFailed, ErrorMailboxMoveInProgress,
    ErrorMailboxStoreUnavailable, ErrorMailRecipientNotFound, ErrorMailTipsDisabled, ErrorManagedFolderAlreadyExists,
    ErrorManagedFolderNotFound, ErrorManagedFoldersRootFailure, ErrorMeetingSuggestionGenerationFailed, ErrorMessageDispositionRequired,
    ErrorMessageSizeExceeded, ErrorMimeContentConversionFailed, ErrorMimeContentInvalid, ErrorMimeContentInvalidBase64String,
    ErrorMissingArgument, ErrorMissingEmailAddress, ErrorMissingEmailAddressForManagedFolder, ErrorMissingInformationEmailAddress,
    ErrorMissingInformationReferenceItemId, ErrorMissingItemForCreateItemAttachment, ErrorMissingManagedFolderId, ErrorMissingRecipients,
    ErrorMissingUserIdInformation, ErrorMoreThanOneAccessModeSpecified, ErrorMoveCopyFailed, ErrorMoveDistinguishedFolder,
    ErrorMultiLegacyMailboxAccess, ErrorNameResolutionMultipleResults, ErrorNameResolutionNoMailbox, ErrorNameResolutionNoResults,
    ErrorNoApplicableProxyCASServersAvailable, ErrorNoCalendar, ErrorNoDestinationCASDueToKerberosRequirements, ErrorNoDestinationCASDueToSSLRequirements,
    ErrorNoDestinationCASDueToVersionMismatch, ErrorNoFolderClassOverride, ErrorNoFreeBusyAccess, ErrorNonExistentMailbox,
    ErrorNonPrimarySmtpAddress, ErrorNoPropertyTagForCustomProperties, ErrorNoPublicFolderReplicaAvailable, ErrorNoPublicFolderServerAvailable,
    ErrorNoRespondingCASInDestinationSite, ErrorNotDelegate, ErrorNotEnoughMemory, ErrorObjectTypeChanged,
    ErrorOccurrenceCrossingBoundary, ErrorOccurrenceTimeSpanTooBig, ErrorOperationNotAllowedWithPublicFolderRoot, ErrorParentFolderIdRequired,
    ErrorParentFolderNotFound, ErrorPasswordChangeRequired, ErrorPasswordExpired, ErrorPhoneNumberNotDialable,
    ErrorPropertyUpdate, ErrorPromptPublishingOperationFailed, ErrorPropertyValidationFailure, ErrorProxiedSubscriptionCallFailure,
    ErrorProxyCallFailed, ErrorProxyGroupSidLimitExceeded, ErrorProxyRequestNotAllowed, ErrorProxyRequestProcessingFailed,
    ErrorProxyServiceDiscoveryFailed, ErrorProxyTokenExpired, ErrorPublicFolderMailboxDiscoveryFailed, ErrorPublicFolderOperationFailed,
    ErrorPublicFolderRequestProcessingFailed, ErrorPublicFolderServerNotFound, ErrorPublicFolderSyncException, ErrorQueryFilterTooLong,
    ErrorQuotaExceeded, ErrorReadEventsFailed, ErrorReadReceiptNotPending, ErrorRecurrenceEndDateTooBig,
    ErrorRecurrenceHasNoOccurrence, ErrorRemoveDelegatesFailed, ErrorRequestAborted, ErrorRequestStreamTooBig,
    ErrorRequiredPropertyMissing, ErrorResolveNamesInvalidFolderType, ErrorResolveNamesOnlyOneContactsFolderAllowed, ErrorResponseSchemaValidation,
    ErrorRestrictionTooLong, ErrorRestrictionTooComplex, ErrorResultSetTooBig, ErrorInvalidExchangeImpersonationHeaderData,
    ErrorSavedItemFolderNotFound, ErrorSchemaValidation, ErrorSearchFolderNotInitialized, ErrorSendAsDenied,
    ErrorSendMeetingCancellationsRequired, ErrorSendMeetingInvitationsOrCancellationsRequired, ErrorSendMeetingInvitationsRequired, ErrorSentMeetingRequestUpdate,
    ErrorSentTaskRequestUpdate, ErrorServerBusy, ErrorServiceDiscoveryFailed, ErrorStaleObject,
    ErrorSubmissionQuotaExceeded, ErrorSubscriptionAccessDenied, ErrorSubscriptionDelegateAccessNotSupported, ErrorSubscriptionNotFound,
    ErrorSubscriptionUnsubscribed, ErrorSyncFolderNotFound, ErrorTeamMailboxNotFound, ErrorTeamMailboxNotLinkedToSharePoint,
    ErrorTeamMailboxUrlValidationFailed, ErrorTeamMailboxNotAuthorizedOwner, ErrorTeamMailboxActiveToPendingDelete, ErrorTeamMailboxFailedSendingNotifications,
    ErrorTeamMailboxErrorUnknown, ErrorTimeIntervalTooBig, ErrorTimeoutExpired, ErrorTimeZone,
    ErrorToFolderNotFound, ErrorTokenSerializationDenied, ErrorTooManyObjectsOpened, ErrorUpdatePropertyMismatch,
    ErrorUnifiedGroupMailboxAADCreationFailed, ErrorUnifiedGroupMailboxAADDeleteFailed, ErrorUnifiedGroupMailboxNamingPolicy, ErrorUnifiedGroupMailboxDeleteFailed,
    ErrorUnifiedGroupMailboxNotFound, ErrorUnifiedGroupMailboxUpdateDelayed, ErrorUnifiedGroupMailboxUpdatedPartialProperties, ErrorUnifiedGroupMailboxUpdateFailed,
    ErrorUnifiedGroupMailboxProvisionFailed, ErrorUnifiedMessagingDialPlanNotFound, ErrorUnifiedMessagingReportDataNotFound, ErrorUnifiedMessagingPromptNotFound,
    ErrorUnifiedMessagingRequestFailed, ErrorUnifiedMessagingServerNotFound, ErrorUnableToGetUserOofSettings, ErrorUnableToRemoveImContactFromGroup,
    ErrorUnsupportedSubFilter, ErrorUnsupportedCulture, ErrorUnsupportedMapiPropertyType, ErrorUnsupportedMimeConversion,
    ErrorUnsupportedPathForQuery, ErrorUnsupportedPathForSortGroup, ErrorUnsupportedPropertyDefinition, ErrorUnsupportedQueryFilter,
    ErrorUnsupportedRecurrence, ErrorUnsupportedTypeForConversion, ErrorUpdateDelegatesFailed, ErrorUserNotUnifiedMessagingEnabled,
    ErrorVoiceMailNotImplemented, ErrorValueOutOfRange, ErrorVirusDetected, ErrorVirusMessageDeleted,
    ErrorWebRequestInInvalidState, ErrorWin32InteropError, ErrorWorkingHoursSaveFailed, ErrorWorkingHoursXmlMalformed,
    ErrorWrongServerVersion, ErrorWrongServerVersionDelegate, ErrorMissingInformationSharingFolderId, ErrorDuplicateSOAPHeader,
    ErrorSharingSynchronizationFailed, ErrorSharingNoExternalEwsAvailable, ErrorFreeBusyDLLimitReached, ErrorInvalidGetSharingFolderRequest,
    ErrorNotAllowedExternalSharingByPolicy, ErrorUserNotAllowedByPolicy, ErrorPermissionNotAllowedByPolicy, ErrorOrganizationNotFederated,
    ErrorMailboxFailover, ErrorInvalidExternalSharingInitiator, ErrorMessageTrackingPermanentError, ErrorMessageTrackingTransientError,
    ErrorMessageTrackingNoSuchDomain, ErrorUserWithoutFederatedProxyAddress, ErrorInvalidOrganizationRelationshipForFreeBusy, ErrorInvalidFederatedOrganizationId,
    ErrorInvalidExternalSharingSubscriber, ErrorInvalidSharingData, ErrorInvalidSharingMessage, ErrorNotSupportedSharingMessage,
    ErrorApplyConversationActionFailed, ErrorInboxRulesValidationError, ErrorOutlookRuleBlobExists, ErrorRulesOverQuota,
    ErrorNewEventStreamConnectionOpened, ErrorMissedNotificationEvents, ErrorDuplicateLegacyDistinguishedName, ErrorInvalidClientAccessTokenRequest,
    ErrorNoSpeechDetected, ErrorUMServerUnavailable, ErrorRecipientNotFound, ErrorRecognizerNotInstalled,
    ErrorSpeechGrammarError, ErrorInvalidManagementRoleHeader, ErrorLocationServicesDisabled, ErrorLocationServicesRequestTimedOut,
    ErrorLocationServicesRequestFailed, ErrorLocationServicesInvalidRequest, ErrorWeatherServiceDisabled, ErrorMailboxScopeNotAllowedWithoutQueryString,
    ErrorArchiveMailboxSearchFailed, ErrorGetRemoteArchiveFolderFailed, ErrorFindRemoteArchiveFolderFailed, ErrorGetRemoteArchiveItemFailed,
    ErrorExportRemoteArchiveItemsFailed, ErrorInvalidPhotoSize, ErrorSearchQueryHasTooManyKeywords, ErrorSearchTooManyMailboxes,
    ErrorInvalidRetentionTagNone, ErrorDiscoverySearchesDisabled, ErrorCalendarSeekToConditionNotSupported, ErrorCalendarIsGroupMailboxForAccept,
    ErrorCalendarIsGroupMailboxForDecline, ErrorCalendarIsGroupMailboxForTentative, ErrorCalendarIsGroupMailboxForSuppressReadReceipt, ErrorOrganizationAccessBlocked,
    ErrorInvalidLicense, ErrorMessagePerFolderCountReceiveQuotaExceeded, ErrorInvalidBulkActionType, ErrorInvalidKeepNCount,
    ErrorInvalidKeepNType, ErrorNoOAuthServerAvailableForRequest, ErrorInstantSearchSessionExpired, ErrorInstantSearchTimeout,
    ErrorInstantSearchFailed, ErrorUnsupportedUserForExecuteSearch, ErrorDuplicateExtendedKeywordDefinition, ErrorMissingExchangePrincipal,
    ErrorUnexpectedUnifiedGroupsCount, ErrorParsingXMLResponse, ErrorInvalidFederationOrganizationIdentifier, ErrorInvalidSweepRule,
    ErrorInvalidSweepRuleOperationType, ErrorTargetDomainNotSupported, ErrorInvalidInternetWebProxyOnLocalServer, ErrorNoSenderRestrictionsSettingsFoundInRequest,
    ErrorDuplicateSenderRestrictionsInputFound, ErrorSenderRestrictionsUpdateFailed, ErrorMessageSubmissionBlocked, ErrorExceededMessageLimit,
    ErrorExceededMaxRecipientLimitBlock, ErrorAccountSuspend, ErrorExceededMaxRecipientLimit, ErrorMessageBlocked,
    ErrorAccountSuspendShowTierUpgrade, ErrorExceededMessageLimitShowTierUpgrade, ErrorExceededMaxRecipientLimitShowTierUpgrade, ErrorInvalidLongitude,
    ErrorInvalidLatitude, ErrorProxySoapException, ErrorUnifiedGroupAlreadyExists, ErrorUnifiedGroupAadAuthorizationRequestDenied,
    ErrorUnifiedGroupCreationDisabled, ErrorMarketPlaceExtensionAlreadyInstalledForOrg, ErrorExtensionAlreadyInstalledForOrg, ErrorNewerExtensionAlreadyInstalled,
    ErrorNewerMarketPlaceExtensionAlreadyInstalled, ErrorInvalidExtensionId, ErrorCannotUninstallProvidedExtensions, ErrorNoRbacPermissionToInstallMarketPlaceExtensions,
    ErrorNoRbacPermissionToInstallReadWriteMailboxExtensions, ErrorInvalidReportMessageActionType,
}

impl std::fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ResponseCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `MessageXml`: `t:Value Name="…"` pairs (BackOffMilliseconds, InnerErrorResponseCode,
/// SmtpAddress, …) and the names of any other children (e.g. the `FieldURI` of a bad property).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MessageXml {
    pub values: Vec<(String, String)>,
    pub elements: Vec<String>,
}

impl MessageXml {
    /// The value named `name`, if present.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `BackOffMilliseconds`, the wait a busy server asks for.
    pub fn back_off(&self) -> Option<Duration> {
        self.value("BackOffMilliseconds")?
            .trim()
            .parse()
            .ok()
            .map(Duration::from_millis)
    }

    /// `InnerErrorResponseCode` (inside ErrorInternalServerError).
    pub fn inner_code(&self) -> Option<ResponseCode> {
        self.value("InnerErrorResponseCode")
            .map(ResponseCode::parse)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty() && self.elements.is_empty()
    }

    /// Reads the children of a `MessageXml` element (either namespace).
    pub fn read(r: &mut XmlReader<'_>, el: &Element<'_>) -> Result<Self, Error> {
        let mut out = Self::default();
        while let Some(child) = r.next_child(el)? {
            if child.name() == "Value" {
                let name = child.attr("Name").unwrap_or_default();
                let value = r.text(&child)?;
                out.values.push((name, value));
            } else {
                let name = child
                    .attr("FieldURI")
                    .unwrap_or_else(|| child.name().to_owned());
                out.elements.push(name);
                r.skip(&child)?;
            }
        }
        Ok(out)
    }
}

/// A response message that did not succeed: its class, code, text and extras.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseError {
    pub class: ResponseClass,
    pub code: ResponseCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "MessageXml::is_empty")]
    pub message_xml: MessageXml,
}

impl ResponseError {
    /// The back-off a busy server asked for, wherever it said so.
    pub fn back_off(&self) -> Option<Duration> {
        self.message_xml.back_off()
    }
}

impl std::fmt::Display for ResponseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code.as_str())?;
        if let Some(t) = &self.text {
            write!(f, ": {}", t.trim())?;
        }
        Ok(())
    }
}

/// One `*ResponseMessage`: the operation's payload when it succeeded, else what went wrong.
pub type MessageResult<T> = Result<T, ResponseError>;

/// `ServerVersionInfo` from the response header; logged, never acted on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerVersionInfo {
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub major_build: Option<u32>,
    pub minor_build: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

impl ServerVersionInfo {
    pub fn read(el: &Element<'_>) -> Self {
        let num = |n: &str| el.attr(n).and_then(|v| v.trim().parse().ok());
        Self {
            major: num("MajorVersion"),
            minor: num("MinorVersion"),
            major_build: num("MajorBuildNumber"),
            minor_build: num("MinorBuildNumber"),
            version: el.attr("Version"),
        }
    }
}

/// A parsed response: one entry per response message, in the server's order (request order
/// for batches).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Response<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_version: Option<ServerVersionInfo>,
    pub messages: Vec<MessageResult<T>>,
}

impl<T> Response<T> {
    /// The single message of a one-message response, or an error saying there was none.
    pub fn into_single(self) -> Result<MessageResult<T>, Error> {
        self.messages
            .into_iter()
            .next()
            .ok_or_else(|| Error::Malformed {
                line: 0,
                column: 0,
                message: "the response holds no response message".into(),
            })
    }
}

/// Reads the `m:ResponseMessages` inside `response` (an `m:<Op>Response`), one message at a
/// time: an error code in one never affects the others.
pub fn read_messages<'i, T: Default>(
    r: &mut XmlReader<'i>,
    response: &Element<'_>,
    mut field: impl FnMut(&mut XmlReader<'i>, &Element<'i>, &mut T) -> Result<bool, Error>,
) -> Result<Vec<MessageResult<T>>, Error> {
    let mut out = Vec::new();
    while let Some(list) = r.next_child(response)? {
        if !list.is(Ns::Messages, "ResponseMessages") {
            r.skip(&list)?;
            continue;
        }
        while let Some(message) = r.next_child(&list)? {
            out.push(read_message(r, &message, &mut field)?);
        }
    }
    Ok(out)
}

/// Reads one `*ResponseMessage`: the common fields here, the operation's own children through
/// `field`, which returns `false` for children it does not know (they are skipped).
pub fn read_message<'i, T: Default>(
    r: &mut XmlReader<'i>,
    message: &Element<'_>,
    mut field: impl FnMut(&mut XmlReader<'i>, &Element<'i>, &mut T) -> Result<bool, Error>,
) -> Result<MessageResult<T>, Error> {
    let class = message
        .attr("ResponseClass")
        .and_then(|c| ResponseClass::parse(&c))
        .ok_or_else(|| r.error("a response message without a valid ResponseClass"))?;
    let mut payload = T::default();
    let mut code = None;
    let mut text = None;
    let mut message_xml = MessageXml::default();
    while let Some(child) = r.next_child(message)? {
        match child.name() {
            "ResponseCode" => code = Some(ResponseCode::parse(&r.trimmed(&child)?)),
            "MessageText" => text = Some(r.text(&child)?),
            "MessageXml" => message_xml = MessageXml::read(r, &child)?,
            "DescriptiveLinkKey" => r.skip(&child)?,
            _ => {
                if !field(r, &child, &mut payload)? {
                    r.skip(&child)?;
                }
            }
        }
    }
    if class == ResponseClass::Success {
        return Ok(Ok(payload));
    }
    Ok(Err(ResponseError {
        class,
        code: code.unwrap_or(ResponseCode::Other(String::new())),
        text,
        message_xml,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_wire_name() {
        assert_eq!(ResponseCode::ALL.len(), 514);
        for code in ResponseCode::ALL {
            assert_eq!(&ResponseCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ResponseCode::parse(" ErrorSomethingNew "),
            ResponseCode::Other("ErrorSomethingNew".into())
        );
    }
}
